#!/bin/sh
# lab-starter.sh NN FILE — print FILE with the regions of lab NN blanked.
#
# Reference files mark the code a lab asks students to write:
#
#     /* LAB 02 BEGIN: hint for the student */
#     ...the reference code...
#     /* LAB 02 END: optional replacement statement */
#
# Each LAB NN region (the BEGIN line, the body and the END line) becomes, at
# the BEGIN line's indentation,
#
#     /* TODO(lab 02): hint for the student */
#     optional replacement statement
#
# The replacement keeps the blank file compiling (a `return` for a function
# that must return something). Regions of other labs are printed unchanged,
# markers included. Both markers must sit on lines of their own.
#
# Exit status: 0 the starter is on stdout; 1 usage or unreadable FILE;
# 2 a marker problem (unmatched, nested, mismatched, not on its own line, or
# no LAB NN region at all in FILE), with a message naming the line.
#
# POSIX sh and awk only (mawk is enough): no Python needed to start a lab.
set -eu

usage() {
    echo "usage: $0 NN FILE   (print FILE with the regions of lab NN blanked)" >&2
    exit 1
}

[ $# -eq 2 ] || usage
case $1 in
'' | *[!0-9]*) echo "$0: lab number must be digits, not '$1'" >&2; usage ;;
esac
if [ ! -f "$2" ] || [ ! -r "$2" ]; then
    echo "$0: cannot read '$2'" >&2
    exit 1
fi

exec awk -v lab="$1" -v file="$2" '
function fail(msg) {
    printf "lab-starter: %s:%d: %s\n", file, NR, msg > "/dev/stderr"
    failed = 1
    exit 2
}
# Output is kept until the end, so that a marker error prints no half file.
function emit(line) {
    out[nout++] = line
}
function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}
# The text after "BEGIN" or "END": an optional ": text" up to the last "*/".
function marker_text(line, word,    s, i) {
    s = line
    i = index(s, word)
    s = substr(s, i + length(word))
    sub(/[ \t]*\*\/[ \t]*$/, "", s)
    s = trim(s)
    if (s == "")
        return ""
    if (substr(s, 1, 1) != ":")
        fail("expected \":\" after " word " (\"/* LAB nn " word ": text */\")")
    return trim(substr(s, 2))
}
BEGIN {
    lab += 0
    open = 0       # inside a region (of any lab)?
    found = 0      # regions of lab NN seen
    nout = 0
}
{
    is_begin = match($0, /\/\*[ \t]*LAB[ \t]+[0-9]+[ \t]+BEGIN/)
    is_end = !is_begin && match($0, /\/\*[ \t]*LAB[ \t]+[0-9]+[ \t]+END/)
    if (!is_begin && !is_end) {
        if (!(open && open_lab == lab))
            emit($0)
        next
    }
    # The lab number of this marker.
    m = substr($0, RSTART, RLENGTH)
    sub(/^\/\*[ \t]*LAB[ \t]+/, "", m)
    sub(/[ \t].*$/, "", m)
    n = m + 0
    t = trim($0)
    if (substr(t, 1, 2) != "/*" || substr(t, length(t) - 1) != "*/" ||
        index(substr(t, 3), "/*") || index(substr(t, 1, length(t) - 2), "*/"))
        fail("a LAB marker must be a comment on a line of its own")
    if (is_begin) {
        if (open)
            fail(sprintf("LAB %02d BEGIN inside the LAB %02d region opened at line %d " \
                         "(regions cannot nest)", n, open_lab, open_line))
        hint = marker_text($0, "BEGIN")
        open = 1
        open_lab = n
        open_line = NR
        indent = $0
        sub(/[^ \t].*$/, "", indent)
        if (n != lab)
            emit($0)
        next
    }
    # an END marker
    if (!open)
        fail(sprintf("LAB %02d END without a BEGIN", n))
    if (n != open_lab)
        fail(sprintf("LAB %02d END closes the LAB %02d region opened at line %d", n, open_lab,
                     open_line))
    repl = marker_text($0, "END")
    open = 0
    if (n != lab) {
        emit($0)
        next
    }
    found++
    if (hint != "")
        emit(sprintf("%s/* TODO(lab %02d): %s */", indent, lab, hint))
    else
        emit(sprintf("%s/* TODO(lab %02d) */", indent, lab))
    if (repl != "")
        emit(indent repl)
}
END {
    if (failed)
        exit 2
    if (open) {
        NR = open_line
        fail(sprintf("LAB %02d BEGIN has no END", open_lab))
    }
    if (!found) {
        printf "lab-starter: %s: no LAB %02d region in this file\n", file, lab > "/dev/stderr"
        exit 2
    }
    for (i = 0; i < nout; i++)
        print out[i]
}
' "$2"
