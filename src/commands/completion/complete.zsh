#compdef kubectl-mesh_upgrade
# zsh completion for kubectl-mesh_upgrade (kubectl mesh-upgrade run directly).
# Every candidate comes from `kubectl-mesh_upgrade __complete <words>`, the
# entry kubectl's plugin helper calls: verbs, flags and their values, and
# namespaces, contexts, revisions, workloads and Services from the cluster.
_kubectl-mesh_upgrade() {
    local out directive
    local -a lines candidates
    out="$(kubectl-mesh_upgrade __complete "${(@)words[2,CURRENT]}" 2>/dev/null)" || return 1
    lines=("${(@f)out}")
    directive="${lines[-1]#:}"
    candidates=("${(@)lines[1,-2]}")
    candidates=("${(@)candidates%%$'\t'*}")
    candidates=("${(@)candidates:#}")
    if (( ${#candidates} )); then
        compadd -Q -- "${candidates[@]}"
    elif (( (directive & 4) == 0 )); then
        _files
    fi
}
if [[ "${funcstack[1]}" == "_kubectl-mesh_upgrade" ]]; then
    _kubectl-mesh_upgrade "$@"
else
    compdef _kubectl-mesh_upgrade kubectl-mesh_upgrade
fi
