# common.sh - shared helpers for the integration scripts and benchmarks (source it from bash).
#
#   . tests/lib/common.sh
#   ok NAME / not_ok NAME [DETAIL...] / skip NAME REASON / check NAME CMD...
#   need_root                 # true when running as root (no output)
#   T                         # per-script temp dir, removed on EXIT (KEEP_TMP=1 keeps it)
#   tree_listing DIR          # one sorted line per entry below DIR (see below)
#   tree_diff A B [--no-owner] [--no-mtime]
#                             # A and B are directories or saved listings; prints a diff,
#                             # returns 1 when they differ
#
# Listing line (fields separated by TAB; path and symlink target encoded with printf %q, so
# names with spaces, tabs, newlines or UTF-8 stay on one line and unambiguous):
#   PATH TYPE MODE SIZE MTIME UID:GID TARGET SHA256
# TYPE is find's %y letter (f d l p s c b); SIZE is "-" for directories (their st_size depends
# on the filesystem's history), "c,MAJ,MIN"-style rdev for devices goes into TARGET; MTIME is
# seconds with nanoseconds, or "fresh" when TREE_FRESH_AFTER (epoch seconds) is set and the
# mtime is not older than it (so two tools that both stamp "now" compare equal, while a time
# copied from a fixed fixture epoch is compared exactly).  TREE_NO_OWNER=1 prints "-" for
# UID:GID.  Entries named .xroad-replicate (the tool's state dir, DEST/.xroad-replicate) and
# everything below them are left out, at any depth (so DIR may be a parent of DEST).

TESTS_PASS=${TESTS_PASS:-0}
TESTS_FAIL=${TESTS_FAIL:-0}
TESTS_SKIP=${TESTS_SKIP:-0}

# Prints "ok - NAME".
ok() {
	TESTS_PASS=$((TESTS_PASS + 1))
	printf 'ok - %s\n' "$1"
}

# Prints "not ok - NAME" and the optional detail lines as "#   " comments.
not_ok() {
	local name=$1
	shift
	TESTS_FAIL=$((TESTS_FAIL + 1))
	printf 'not ok - %s\n' "$name"
	local line
	for line in "$@"; do
		[ -n "$line" ] && printf '%s\n' "$line"
	done | sed 's/^/#   /'

}

# Prints "ok - NAME # SKIP REASON".
skip() {
	TESTS_SKIP=$((TESTS_SKIP + 1))
	TESTS_PASS=$((TESTS_PASS + 1))
	printf 'ok - %s # SKIP %s\n' "$1" "$2"
}

# check NAME CMD...: runs CMD; ok when it exits 0, else not ok with its output (last lines).
check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "exit $rc: $*" "$(printf '%s\n' "$out" | tail -20)"
	fi
	return "$rc"
}

# Returns 0 when running as root.
need_root() {
	[ "$(id -u)" = 0 ]
}

# Prints a summary comment line; returns 1 when something failed.
tests_done() {
	printf '# %d passed (%d skipped), %d failed\n' "$TESTS_PASS" "$TESTS_SKIP" "$TESTS_FAIL"
	[ "$TESTS_FAIL" = 0 ]
}

# Per-script temp dir, removed on exit unless KEEP_TMP=1.
if [ -z "${T:-}" ] || [ ! -d "${T:-}" ]; then
	T=$(mktemp -d "${TMPDIR:-/tmp}/xr-test.XXXXXX") || exit 1
	# Removes the temp dir (trap handler); 0000 entries are fine for root, chmod for others.
	common_cleanup() {
		if [ "${KEEP_TMP:-0}" = 1 ]; then
			echo "# kept $T" >&2
			return
		fi
		[ -d "$T" ] || return
		chmod -R u+rwX "$T" 2>/dev/null
		rm -rf "$T"
	}
	trap common_cleanup EXIT
	trap 'exit 130' INT TERM
fi

# tree_listing DIR: prints the listing of every entry below DIR (format above), sorted (C).
tree_listing() {
	local dir=${1%/} rec name type mode size mtime own target sum qname qtarget out="" skip
	local -A digest=()
	[ -d "$dir" ] || { echo "tree_listing: $dir: not a directory" >&2; return 2; }
	[ -n "$dir" ] || dir=/
	skip=$((66 + ${#dir} + 1))
	[ "$dir" = / ] && skip=66
	# content digests, NUL-safe: "HASH  DIR/NAME\0" per regular file
	while IFS= read -r -d '' rec; do
		digest[${rec:skip}]=${rec:0:64}
	done < <(find "$dir" -mindepth 1 -name .xroad-replicate -prune -o -type f \
		-exec sha256sum -z -- {} +)
	while IFS= read -r -d '' name && IFS= read -r -d '' type &&
		IFS= read -r -d '' mode && IFS= read -r -d '' size &&
		IFS= read -r -d '' mtime && IFS= read -r -d '' own &&
		IFS= read -r -d '' target; do
		sum=-
		case $type in
		f) sum=${digest[$name]:-?} ;;
		d) size=- ;;
		c | b) target=$(stat -c "%t:%T" -- "$dir/$name") ;;
		esac
		[ "$type" = l ] || [ "$type" = c ] || [ "$type" = b ] || target=-
		[ "${TREE_NO_OWNER:-0}" = 1 ] && own=-
		if [ -n "${TREE_FRESH_AFTER:-}" ] && [ "${mtime%%.*}" -ge "$TREE_FRESH_AFTER" ]; then
			mtime=fresh
		fi
		printf -v qname '%q' "$name"
		printf -v qtarget '%q' "$target"
		out+="$qname	$type	$mode	$size	$mtime	$own	$qtarget	$sum"$'\n'
	done < <(find "$dir" -mindepth 1 -name .xroad-replicate -prune -o \
		-printf '%P\0%y\0%#m\0%s\0%T@\0%U:%G\0%l\0')
	# one process for the sort, none for the loop (this runs for every tree in every test)
	[ -z "$out" ] || LC_ALL=C sort <<<"${out%$'\n'}"
}

# tree_diff A B [--no-owner] [--no-mtime]: compares two trees (directories) or saved listings
# (regular files); prints a unified diff of the listings and returns 1 when they differ.
tree_diff() {
	local a=$1 b=$2 opt cut='{ print }'
	shift 2
	local no_owner=0 no_mtime=0
	for opt in "$@"; do
		case $opt in
		--no-owner) no_owner=1 ;;
		--no-mtime) no_mtime=1 ;;
		*) echo "tree_diff: unknown option $opt" >&2; return 2 ;;
		esac
	done
	cut="BEGIN { FS = OFS = \"\\t\" }
		{ if ($no_owner) \$6 = \"-\"; if ($no_mtime) \$5 = \"-\"; print }"
	diff -U0 --label "$a" --label "$b" \
		<(if [ -d "$a" ]; then tree_listing "$a"; else cat -- "$a"; fi | awk "$cut") \
		<(if [ -d "$b" ]; then tree_listing "$b"; else cat -- "$b"; fi | awk "$cut")
	[ $? = 0 ] || return 1
}
