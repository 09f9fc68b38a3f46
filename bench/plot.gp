# bench/plot.gp - ratio bars for a benchmark report (gnuplot 5).
#
#   gnuplot -e "datafile='R.dat'; outfile='R.png'; plottitle='...'" bench/plot.gp
#   optional: -e "latencyfile='L.dat'; nlat=N"  (watch mode latency CDF)
#
# datafile: one line per scenario, whitespace-separated, "#" comments:
#   SCENARIO  WALL_RATIO  CPU_RATIO      (ours/rsync, median/median; "-" when not available)
# latencyfile (--watch mode, written by bench/watch.sh): nlat blocks separated by two blank
#   lines, each a header line "\"LABEL\" \"fraction\"" then "MS FRACTION" sorted by MS: the
#   empirical CDF of the change-to-applied latency per configuration (number of secondaries,
#   rsync+inotifywait). When the variable is unset or the file is empty, only the ratio panel
#   is drawn; nothing is invented for it.

if (!exists("datafile")) datafile = 'ratios.dat'
if (!exists("outfile")) outfile = 'ratios.png'
if (!exists("plottitle")) plottitle = 'ours / rsync (median / median)'
if (!exists("latencyfile")) latencyfile = ''
if (!exists("nlat")) nlat = 0

have_latency = 0
if (strlen(latencyfile) > 0) {
	have_latency = (system(sprintf("test -s '%s' && echo 1 || echo 0", latencyfile)) eq "1")
}

set terminal pngcairo size (have_latency ? 1500 : 1000), 560 font 'sans,10' noenhanced
set output outfile
set datafile missing '-'

if (have_latency) { set multiplot layout 1, 2 }

set title plottitle
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel 'ratio ours / rsync (lower is better for ours)'
set yrange [0:*]
set grid ytics
set xtics rotate by -35 left nomirror
set key top left
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 linewidth 1.5 \
	linecolor rgb '#444444' front
set bmargin 8
plot datafile using 2:xtic(1) title 'wall time' linecolor rgb '#3b75af', \
     ''       using 3 title 'CPU (user+sys, whole tree)' linecolor rgb '#ef8536', \
     ''       using 0:2:(sprintf('%.2f', column(2))) with labels offset -1.8, 0.7 \
              font ',8' notitle

if (have_latency) {
	unset arrow 1
	unset bmargin
	set title 'watch mode: change on the primary -> on every secondary (CDF)'
	set style data steps
	set logscale x 10
	set xrange [*:*]
	set yrange [0:1.02]
	set xlabel 'latency (ms, log scale)'
	set ylabel 'fraction of changes'
	set xtics norotate autofreq
	set key bottom right
	set grid xtics ytics
	plot for [i=0:nlat-1] latencyfile index i using 1:2 with steps linewidth 2 \
		title columnheader(1)
	unset multiplot
}
