#!/bin/sh
# lab.sh — start, grade and self-check the labs (see labs/README.md).
#
#   scripts/lab.sh start NN   make labs/NN-*/work/ from the blank starter
#   scripts/lab.sh grade NN   build with your work files, run graders <= NN
#   scripts/lab.sh check      every grader passes on the reference and
#                             fails on the blank starter
#
# `make lab-start LAB=NN`, `make lab LAB=NN` and `make lab-check` call this.
#
# A lab folder labs/NN-name/ holds grader.c (a Check test program), README.md
# and `files`: the reference files the student rewrites, one per line
# (core/future.c). The student's copies live in labs/NN-name/work/ under
# their base names. Grading builds a separate library in build/labNN/ with
# LAB_SUBST pointing the Makefile at the work files of lab NN and of every
# earlier lab that has a work/ folder: labs are cumulative.
#
# Environment: SAN (asan or tsan: a sanitizer build, in build/labNN-asan/ ...),
# JOBS (parallel make jobs), LAB_CFLAGS (compiler flags of lab builds),
# LAB_TIMEOUT (seconds before a grader counts as hung, default 120), MAKE.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# Lab builds keep -Werror except for what a half-written file always has:
# unused parameters, variables and helpers. Those stay warnings.
LAB_CFLAGS=${LAB_CFLAGS:--O2 -g -Wno-error=unused-parameter -Wno-error=unused-variable \
-Wno-error=unused-function -Wno-error=unused-but-set-variable -Wno-error=unused-but-set-parameter}
LAB_TIMEOUT=${LAB_TIMEOUT:-120}

# The inner make must not inherit the outer one's flags and variables (when
# run from `make lab`, MAKEFLAGS carries LAB=.. and a jobserver we cannot use).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES 2>/dev/null || true

say() { printf '%s\n' "$*"; }
die() {
    printf 'lab: %s\n' "$*" >&2
    exit 2
}

# ---- finding labs --------------------------------------------------------

# "2", "02" or "02-futures" -> "02"
lab_num() {
    n=${1%%-*}
    case $n in
    '' | *[!0-9]*) die "'$1' is not a lab number (try: make lab LAB=02)" ;;
    esac
    awk -v x="$n" 'BEGIN { printf "%02d", x + 0 }'
}

# Every lab folder with a grader, in order.
all_labs() {
    for d in labs/[0-9][0-9]-*/; do
        [ -f "$d/grader.c" ] && printf '%s\n' "${d%/}"
    done
    return 0
}

lab_dir() {
    set -- labs/"$1"-*/grader.c
    [ -f "$1" ] || return 1
    [ $# -eq 1 ] || die "more than one folder for this lab: $*"
    dirname "$1"
}

require_lab_dir() {
    lab_dir "$1" || die "no lab $1 (labs with a grader: $(all_labs | tr '\n' ' '))"
}

# The reference files a lab edits (comments and blank lines ignored).
lab_files() {
    [ -f "$1/files" ] || die "$1/files is missing (it lists the files of the lab)"
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e 's/^[[:space:]]*//' "$1/files" | grep -v '^$' || true
}

# ---- building and running graders -----------------------------------------

# build BUILD_DIR "SUBST" TARGET... — one make run in a build tree of its own.
# A change of the substitution list forces the library to be relinked (make
# sees only timestamps: swapping an older object back in would go unnoticed).
build() {
    bdir=$1 subst=$2
    shift 2
    mkdir -p "$bdir"
    stamp="$bdir/lab-subst"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$subst" ]; then
        rm -f "$bdir/lib/libseacore.a" "$bdir/lib/libseacore.so"
        printf '%s\n' "$subst" >"$stamp"
    fi
    ${MAKE:-make} -s -j"$JOBS" --no-print-directory BUILD="$bdir" LAB_SUBST="$subst" \
        CFLAGS="$LAB_CFLAGS" ${SAN:+SAN="$SAN"} "$@"
}

# run_grader BIN — runs it under a time limit; sets $verdict and returns its status
run_grader() {
    rc=0
    if command -v timeout >/dev/null 2>&1; then
        timeout "$LAB_TIMEOUT" "$1" || rc=$?
    else
        "$1" || rc=$?
    fi
    case $rc in
    0) verdict="PASS" ;;
    124) verdict="FAIL (no answer after $LAB_TIMEOUT s: an endless loop?)" ;;
    1) verdict="FAIL (failing checks above)" ;;
    *) if [ "$rc" -gt 128 ]; then
           verdict="FAIL (crashed: signal $((rc - 128)))"
       else
           verdict="FAIL (exit $rc)"
       fi ;;
    esac
    return $rc
}

# check_counts LOG — "F of N" failing checks from a Check summary line, or "?"
check_counts() {
    sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\2 \3 \1/p' "$1" |
        tail -n 1 | awk '{ printf "%d of %d", $1 + $2, $3; found = 1 } END { if (!found) print "?" }'
}

# ---- start -----------------------------------------------------------------

cmd_start() {
    nn=$(lab_num "$1")
    dir=$(require_lab_dir "$nn")
    files=$(lab_files "$dir")
    [ -n "$files" ] || die "$dir/files lists no file"
    for f in $files; do
        w="$dir/work/$(basename "$f")"
        if [ -e "$w" ]; then
            say "lab $nn: $w already exists; your work stays as it is."
            say "  grade it:     make lab LAB=$nn"
            say "  start over:   rm $w && make lab-start LAB=$nn   (this throws your work away)"
            exit 1
        fi
    done
    mkdir -p "$dir/work"
    tmp="$dir/work/.starting"
    mkdir -p "$tmp"
    for f in $files; do
        scripts/lab-starter.sh "$nn" "$f" >"$tmp/$(basename "$f")" || {
            rm -rf "$tmp"
            die "could not make the starter for $f (see above)"
        }
    done
    for f in $files; do
        b=$(basename "$f")
        mv "$tmp/$b" "$dir/work/$b"
        say "lab $nn: created $dir/work/$b from $f ($(grep -c "TODO(lab $nn)" "$dir/work/$b") TODOs)"
    done
    rmdir "$tmp"
    say "Read $dir/README.md, fill in the TODO(lab $nn) places, then run: make lab LAB=$nn"
}

# ---- grade -----------------------------------------------------------------

cmd_grade() {
    nn=$(lab_num "$1")
    dir=$(require_lab_dir "$nn")
    if [ ! -d "$dir/work" ]; then
        say "lab $nn: $dir/work/ does not exist yet. Start the lab first:"
        say "  make lab-start LAB=$nn"
        exit 2
    fi
    bd="build/lab$nn${SAN:+-$SAN}"
    # Substitutions: every lab <= nn that has a work/ folder. A later lab's
    # copy of a file wins over an earlier lab's copy of the same file.
    subst="" graders="" labs="" notes=""
    for d in $(all_labs); do
        m=$(lab_num "$(basename "$d")")
        [ "$m" -le "$nn" ] || continue
        labs="$labs $d"
        graders="$graders $bd/labs/grader_$m"
        [ -d "$d/work" ] || {
            notes="$notes
  lab $m: no $d/work/, graded with the reference code"
            continue
        }
        for f in $(lab_files "$d"); do
            w="$d/work/$(basename "$f")"
            if [ ! -f "$w" ]; then
                [ "$m" = "$nn" ] && die "$w is missing; make it again: make lab-start LAB=$nn"
                notes="$notes
  lab $m: no $w, graded with the reference $f"
                continue
            fi
            kept=""
            for p in $subst; do
                [ "${p%%=*}" = "$f" ] || kept="$kept $p"
            done
            subst="$kept $f=$w"
        done
    done
    subst=$(printf '%s' "$subst" | sed 's/^ *//')
    say "lab $nn: building $bd/ with your files in place of the reference:"
    for p in $subst; do
        say "  ${p%%=*}  <-  ${p#*=}"
    done
    [ -z "$notes" ] || say "$notes" | sed '/^$/d'
    # shellcheck disable=SC2086
    if ! build "$bd" "$subst" $graders; then
        say ""
        say "lab $nn: FAIL: the build failed (the compiler's messages are above)."
        exit 1
    fi
    summary="" failed=0
    for d in $labs; do
        m=$(lab_num "$(basename "$d")")
        say ""
        say "==== lab $m ($(basename "$d")): grader_$m ===="
        run_grader "$bd/labs/grader_$m" || failed=1
        summary="$summary
  lab $m  $(basename "$d" | sed 's/^[0-9]*-//')  $verdict"
    done
    say ""
    say "==== summary (lab $nn and every earlier lab) ====$summary"
    if [ $failed -eq 0 ]; then
        say "lab $nn: all graders pass."
    else
        say "lab $nn: some graders fail. Each failing check prints the steps that led to it."
    fi
    exit $failed
}

# ---- check -------------------------------------------------------------------

cmd_check() {
    base="build/labcheck${SAN:+-$SAN}"
    mkdir -p "$base"
    rows="" bad=0
    for d in $(all_labs); do
        nn=$(lab_num "$(basename "$d")")
        g="labs/grader_$nn"

        # 1. the reference: the grader must pass
        ref="$base/$nn-ref"
        say "lab-check: lab $nn: reference build ($ref)"
        if build "$ref" "" "$ref/$g" >"$base/$nn-ref.build.log" 2>&1; then
            if run_grader "$ref/$g" >"$base/$nn-ref.log" 2>&1; then
                ref_v="passes ($(check_counts "$base/$nn-ref.log" | sed 's/.* of //') checks)"
            else
                ref_v="FAILS"
                bad=1
                say "lab-check: lab $nn: the grader fails on the reference code:"
                tail -n 40 "$base/$nn-ref.log"
            fi
        else
            ref_v="NO BUILD"
            bad=1
            tail -n 40 "$base/$nn-ref.build.log"
        fi

        # 2. the blank starter: the grader must fail
        blank="$base/$nn-blank"
        src="$blank/src"
        rm -rf "$src"
        mkdir -p "$src"
        subst="" blank_v=""
        for f in $(lab_files "$d"); do
            if ! scripts/lab-starter.sh "$nn" "$f" >"$src/$(basename "$f")"; then
                blank_v="NO STARTER"
                break
            fi
            subst="$subst $f=$src/$(basename "$f")"
        done
        subst=$(printf '%s' "$subst" | sed 's/^ *//')
        if [ -z "$blank_v" ] && [ -z "$subst" ]; then
            blank_v="NO FILES"
        fi
        if [ -z "$blank_v" ]; then
            say "lab-check: lab $nn: blank-starter build ($blank)"
            if build "$blank" "$subst" "$blank/$g" >"$base/$nn-blank.build.log" 2>&1; then
                if run_grader "$blank/$g" >"$base/$nn-blank.log" 2>&1; then
                    blank_v="PASSES"
                    say "lab-check: lab $nn: the grader passes on the blank starter" \
                        "(a grader that cannot fail is a bug)"
                else
                    blank_v="fails: $(check_counts "$base/$nn-blank.log") checks fail"
                    case $verdict in *"no answer"* | *crashed*) blank_v="fails: $verdict" ;; esac
                fi
            else
                blank_v="NO BUILD"
                say "lab-check: lab $nn: the blank starter does not compile; students could not start:"
                tail -n 40 "$base/$nn-blank.build.log"
            fi
        fi
        case $blank_v in fails:*) ;; *) bad=1 ;; esac
        rows="$rows
$nn|$(basename "$d")|$ref_v|$blank_v"
    done
    [ -n "$rows" ] || die "no labs/NN-*/grader.c found"
    say ""
    printf '%s\n' "$rows" | sed '/^$/d' | awk -F'|' '
        BEGIN { printf "%-4s %-14s %-22s %s\n", "lab", "folder", "reference", "blank starter" }
        { printf "%-4s %-14s %-22s %s\n", $1, $2, $3, $4 }'
    say ""
    if [ $bad -eq 0 ]; then
        say "lab-check: ok: every grader passes on the reference and fails on the blank starter."
    else
        say "lab-check: FAILED (logs in $base/)."
    fi
    return $bad
}

# ---- main --------------------------------------------------------------------

JOBS=${JOBS:-}
case ${1:-} in
start | grade)
    if [ $# -ne 2 ] || [ -z "$2" ]; then
        [ "$1" = start ] && die "which lab? e.g. make lab-start LAB=02"
        die "which lab? e.g. make lab LAB=02"
    fi
    [ -n "$JOBS" ] || JOBS=$(nproc 2>/dev/null || echo 2)
    "cmd_$1" "$2"
    ;;
check)
    [ -n "$JOBS" ] || JOBS=2
    cmd_check
    ;;
*)
    say "usage: $0 start NN | grade NN | check" >&2
    exit 2
    ;;
esac
