#!/bin/sh
# gen_large.sh - deterministic large trees for the benchmark (content, names, sizes and mtimes
# all follow from SEED; two hosts given the same arguments build byte-identical trees).
#
#   gen_large.sh [--files N] [--mb TOTAL_MB] [--big-mb BIG_MB] DIR SEED
#       Build a tree in DIR (must not exist or be empty): N files (default 10000), about
#       TOTAL_MB MiB in all (default 1000) of which one file, big.bin, is BIG_MB MiB (default
#       200). The rest follow a skewed size distribution (60 % 100 B-4 KiB, 30 % 4-128 KiB,
#       9 % 128 KiB-1 MiB, 1 % 1-16 MiB, log-uniform inside each class, then scaled so the total
#       is met) in nested directories d00..d19[/s00..s09[/t0..t3]].
#   gen_large.sh --touch [--count N] DIR SEED
#       Rewrite the whole content of N regular files (default: 1 % of them, big.bin excluded),
#       chosen by SEED, same size, new content from SEED, written to a temp file and renamed
#       into place (so a hardlinked copy of DIR is not affected). mtime of the files and of
#       their directories: old + 1 day.
#   gen_large.sh --rewrite-big DIR SEED
#       Overwrite 1 MiB in the middle of big.bin in place (dd conv=notrunc) with bytes from
#       SEED; if big.bin has other hard links it is first copied so they stay untouched.
#       mtime: old + 1 day.
#
# Content is AES-128-CTR keystream (openssl enc over /dev/zero, -nosalt, password = SEED), so it
# is incompressible; generation runs at disk/page-cache speed (1 GB in seconds).
set -eu

usage() {
	sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# stream SEED: endless deterministic bytes for SEED on stdout
stream() {
	openssl enc -aes-128-ctr -nosalt -pbkdf2 -iter 1 -pass "pass:$1" -in /dev/zero 2>/dev/null
}

mode=gen
files=10000
total_mb=1000
big_mb=200
count=
while [ $# -gt 0 ]; do
	case $1 in
	--files) files=$2; shift 2 ;;
	--mb) total_mb=$2; shift 2 ;;
	--big-mb) big_mb=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;
	--touch) mode="touch"; shift ;;
	--rewrite-big) mode=rewrite; shift ;;
	-h|--help) usage ;;
	--) shift; break ;;
	-*) echo "gen_large.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || usage
dir=$1
seed=$2
command -v openssl >/dev/null || { echo "gen_large.sh: openssl not found" >&2; exit 1; }
command -v perl >/dev/null || { echo "gen_large.sh: perl not found" >&2; exit 1; }

case $mode in
gen)
	mkdir -p "$dir"
	if [ -n "$(ls -A "$dir")" ]; then
		echo "gen_large.sh: $dir is not empty" >&2
		exit 1
	fi
	# Two streams: "SEED/layout" decides sizes, names and depths; "SEED" fills the files in
	# the order they are listed, so the result depends on nothing but the arguments.
	stream "$seed/layout" | {
		exec 3<&0
		stream "$seed" | perl -e '
use strict; use warnings;
my ($dir, $files, $total, $big) = @ARGV;
open(my $lay, "<&=", 3) or die "layout stream: $!";
binmode $lay; binmode STDIN;
sub rd { my ($fh, $n) = @_; my $buf = ""; while (length($buf) < $n) {
	my $r = sysread($fh, $buf, $n - length($buf), length($buf));
	die "short read: $!" unless $r; } return $buf; }
sub u01 { my $v = unpack("N", rd($lay, 4)); return ($v + 0.5) / 4294967296; }
my @ext = qw(xml conf txt log dat bin json ini);
my (@path, @size);
my $sum = 0;
for my $i (1 .. $files - 1) {
	my $c = u01(); my ($lo, $hi);
	if    ($c < 0.60) { ($lo, $hi) = (100, 4096); }
	elsif ($c < 0.90) { ($lo, $hi) = (4096, 131072); }
	elsif ($c < 0.99) { ($lo, $hi) = (131072, 1048576); }
	else              { ($lo, $hi) = (1048576, 16777216); }
	my $s = $lo * exp(log($hi / $lo) * u01());
	my $d = sprintf("d%02d", int(u01() * 20));
	my $depth = u01();
	$d .= sprintf("/s%02d", int(u01() * 10)) if $depth >= 0.2;
	$d .= sprintf("/t%d", int(u01() * 4)) if $depth >= 0.8;
	push @path, sprintf("%s/f%05d.%s", $d, $i, $ext[int(u01() * @ext)]);
	push @size, $s; $sum += $s;
}
my $rest = ($total - $big) * 1048576;
my $k = $sum > 0 ? $rest / $sum : 0;
@size = map { my $v = int($_ * $k); $v < 1 ? 1 : $v } @size;
unshift @path, "big.bin"; unshift @size, $big * 1048576;
my %dirs; my $t0 = 1700000000;
for my $i (0 .. $#path) {
	my $p = "$dir/$path[$i]";
	(my $d = $p) =~ s{/[^/]+$}{};
	unless ($dirs{$d}) { system("mkdir", "-p", $d) == 0 or die "mkdir $d"; $dirs{$d} = 1; }
	open(my $out, ">", $p) or die "$p: $!"; binmode $out;
	my $left = $size[$i];
	while ($left > 0) {
		my $n = $left > 1048576 ? 1048576 : $left;
		my $buf = rd(\*STDIN, $n);
		my $off = 0;
		while ($off < $n) { my $w = syswrite($out, $buf, $n - $off, $off);
			die "$p: write: $!" unless defined $w; $off += $w; }
		$left -= $n;
	}
	close($out) or die "$p: $!";
	utime($t0 + $i, $t0 + $i, $p) or die "$p: utime: $!";
}
# directories: fixed mtimes, deepest first so setting one does not disturb its parent
for my $d (sort { ($b =~ tr{/}{}) <=> ($a =~ tr{/}{}) } keys %dirs) {
	while (length($d) > length($dir)) {
		utime($t0, $t0, $d); $d =~ s{/[^/]+$}{};
	}
}
utime($t0, $t0, $dir);
my $bytes = 0; $bytes += $_ for @size;
printf STDERR "gen_large.sh: %s: %d files, %d dirs, %.1f MiB\n", $dir, scalar(@path),
	scalar(keys %dirs), $bytes / 1048576;
' "$dir" "$files" "$total_mb" "$big_mb"
	}
	;;
touch)
	[ -d "$dir" ] || { echo "gen_large.sh: $dir: not a directory" >&2; exit 1; }
	# the file list (sorted, big.bin excluded) and the choice depend only on DIR's names
	(cd "$dir" && find . -type f ! -path ./big.bin -printf '%P\n' | LC_ALL=C sort) >"$dir.list.$$"
	n=$(wc -l <"$dir.list.$$")
	[ -n "$count" ] || count=$(( (n + 99) / 100 ))
	stream "$seed/pick" | {
		exec 3<&0
		stream "$seed" | perl -e '
use strict; use warnings;
my ($dir, $list, $count) = @ARGV;
open(my $lf, "<", $list) or die "$list: $!"; my @f = <$lf>; chomp @f; close $lf;
open(my $pick, "<&=", 3) or die; binmode $pick; binmode STDIN;
sub rd { my ($fh, $n) = @_; my $buf = ""; while (length($buf) < $n) {
	my $r = sysread($fh, $buf, $n - length($buf), length($buf));
	die "short read: $!" unless $r; } return $buf; }
$count = @f if $count > @f;
# partial Fisher-Yates driven by the pick stream
for my $i (0 .. $count - 1) {
	my $j = $i + int(unpack("N", rd($pick, 4)) / 4294967296 * (@f - $i));
	@f[$i, $j] = @f[$j, $i];
}
my %pd;	# parent directories: mtime before the first rename
for my $rel (sort @f[0 .. $count - 1]) {
	my $p = "$dir/$rel"; my @st = stat($p) or die "$p: $!";
	(my $par = $p) =~ s{/[^/]+$}{};
	$pd{$par} = (stat($par))[9] unless exists $pd{$par};
	my $tmp = "$p.gen_large.tmp";
	open(my $out, ">", $tmp) or die "$tmp: $!"; binmode $out;
	my $left = $st[7];
	while ($left > 0) { my $n = $left > 1048576 ? 1048576 : $left;
		print $out rd(\*STDIN, $n) or die "$tmp: $!"; $left -= $n; }
	close($out) or die "$tmp: $!";
	chmod($st[2] & 07777, $tmp); utime($st[9] + 86400, $st[9] + 86400, $tmp);
	rename($tmp, $p) or die "$p: rename: $!";
}
utime($pd{$_} + 86400, $pd{$_} + 86400, $_) for keys %pd;
printf STDERR "gen_large.sh: %s: rewrote %d of %d files\n", $dir, $count, scalar(@f);
' "$dir" "$dir.list.$$" "$count"
	}
	rm -f "$dir.list.$$"
	;;
rewrite)
	f=$dir/big.bin
	[ -f "$f" ] || { echo "gen_large.sh: $f: no such file" >&2; exit 1; }
	if [ "$(stat -c %h "$f")" -gt 1 ]; then	# break the hard link, keep metadata
		cp -p "$f" "$f.gen_large.tmp" && mv -f "$f.gen_large.tmp" "$f"
	fi
	size=$(stat -c %s "$f")
	mt=$(stat -c %Y "$f")
	mid=$(( size / 2 / 1048576 ))
	[ "$mid" -gt 0 ] || mid=0
	stream "$seed/big" | dd of="$f" bs=1M count=1 seek="$mid" conv=notrunc iflag=fullblock \
		status=none
	touch -m -d "@$((mt + 86400))" "$f"
	echo "gen_large.sh: $f: rewrote 1 MiB at offset $mid MiB" >&2
	;;
esac
