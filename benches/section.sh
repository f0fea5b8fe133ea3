# Sourced by the benchmark scripts: puts a generated table into docs/benchmarks.md.
#
# replace_section OUT NAME HEADING TABLE — replaces the lines from `<!-- NAME:begin` to
# `<!-- NAME:end -->` in OUT with the file TABLE (which carries both markers), or appends
# HEADING and TABLE when OUT has no such section yet.
replace_section() {
    local out=$1 name=$2 heading=$3 table=$4
    if grep -q "<!-- $name:begin" "$out"; then
        awk -v table="$table" -v begin="<!-- $name:begin" -v end="<!-- $name:end -->" '
            index($0, begin) == 1 { while ((getline l < table) > 0) print l; skip = 1; next }
            index($0, end) == 1 { skip = 0; next }
            !skip { print }' "$out" >"$table.out"
        cp "$table.out" "$out"
    else
        { echo; echo "## $heading"; echo; cat "$table"; } >>"$out"
    fi
}
