# bash completion for kubectl-mesh_upgrade (kubectl mesh-upgrade run directly).
# Every candidate comes from `kubectl-mesh_upgrade __complete <words>`, the
# entry kubectl's plugin helper calls: verbs, flags and their values, and
# namespaces, contexts, revisions, workloads and Services from the cluster.
_kubectl_mesh_upgrade() {
    local line="${COMP_LINE:0:COMP_POINT}"
    local -a words
    read -r -a words <<< "$line"
    if [[ -z "$line" || "$line" == *[[:space:]] ]]; then
        words+=("")
    fi
    local cur="${words[${#words[@]}-1]}"
    local out
    out="$(kubectl-mesh_upgrade __complete "${words[@]:1}" 2>/dev/null)" || return 0
    local directive="${out##*:}"
    out="${out%:*}"
    # bash replaces only the part of the word after its last break character
    # (`=`, `:`): drop what comes before it from every candidate.
    local word="${COMP_WORDS[COMP_CWORD]}"
    local before="${cur%"$word"}"
    COMPREPLY=()
    local candidate
    local IFS=$'\n'
    for candidate in $out; do
        candidate="${candidate%%$'\t'*}"
        [[ -n "$candidate" ]] && COMPREPLY+=("${candidate#"$before"}")
    done
    if [[ ${#COMPREPLY[@]} -eq 0 && $(( directive & 4 )) -eq 0 ]]; then
        compopt -o default 2>/dev/null
    fi
    return 0
}
complete -F _kubectl_mesh_upgrade kubectl-mesh_upgrade
