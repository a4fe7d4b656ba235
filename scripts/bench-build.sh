# Sourced by the load benchmarks (scripts/bench-*.sh): one release build of `spacectl` and
# the bench binaries a script drives, and where cargo put each.
#   release_bins <label> <binary>...   builds them; cargo's report in $out/<label>-build.jsonl
#   artifact <binary>                  the path of a binary of the last release_bins
# Needs $out (the bench output folder) and jq.

release_bins() {
    local label="$1"
    shift
    bench_build_report="$out/$label-build.jsonl"
    local bins=()
    for bin in "$@"; do bins+=(--bin "$bin"); done
    cargo build --release -p spacectl -p space-bench "${bins[@]}" \
        --message-format=json-render-diagnostics >"$bench_build_report"
}

artifact() {
    jq -r --arg name "$1" 'select(.reason == "compiler-artifact" and .target.name == $name and .executable != null) | .executable' \
        "$bench_build_report" | tail -n1
}
