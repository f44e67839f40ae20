# fish completion for kubectl-mesh_upgrade (kubectl mesh-upgrade run directly).
# Every candidate comes from `kubectl-mesh_upgrade __complete <words>`, the
# entry kubectl's plugin helper calls: verbs, flags and their values, and
# namespaces, contexts, revisions, workloads and Services from the cluster.
function __kubectl_mesh_upgrade_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l out (kubectl-mesh_upgrade __complete $words[2..-1] "$current" 2>/dev/null)
    or return
    set -l directive (string replace -r '^:' '' -- $out[-1])
    set -e out[-1]
    if test (count $out) -gt 0
        printf '%s\n' $out
    else if test (math "$directive % 8 - $directive % 4") -eq 0
        __fish_complete_path "$current"
    end
end
complete -c kubectl-mesh_upgrade -f -a '(__kubectl_mesh_upgrade_complete)'
