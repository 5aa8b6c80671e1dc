# bench/plot.gp - the load-test plots, called by bench/loadtest.sh:
#   gnuplot -e "dir='DATA'; out='OUTDIR'; n=N; titles='\"t1\" \"t2\" ...'" bench/plot.gp
# DATA holds model1.dat .. modelN.dat (columns: offered req/s, p50 ms, p99 ms, achieved req/s)
# and saturation.dat (columns: "label" max-2xx-req/s). Writes three PNGs into OUTDIR.

set terminal pngcairo size 1000,640 enhanced font "DejaVu Sans,11"
set datafile separator whitespace
set grid
set key outside right top box opaque title "model"
set border lw 1.2
set style line 1 lc rgb "#1f77b4" lw 2 pt 7
set style line 2 lc rgb "#ff7f0e" lw 2 pt 5
set style line 3 lc rgb "#2ca02c" lw 2 pt 9
set style line 4 lc rgb "#d62728" lw 2 pt 11
set style line 5 lc rgb "#9467bd" lw 2 pt 13
set style line 6 lc rgb "#8c564b" lw 2 pt 6 dt 2
set style line 7 lc rgb "#e377c2" lw 2 pt 4 dt 2
set style line 8 lc rgb "#7f7f7f" lw 2 pt 8 dt 2

set xlabel "offered load (requests/s, open loop, Poisson arrivals)"
set xrange [0:*]

set output out."/latency-p50-vs-load.png"
set title "Median (p50) latency vs offered load, per group count"
set ylabel "p50 latency (ms, log scale, from intended send time)"
set logscale y
plot for [i=1:n] sprintf("%s/model%d.dat", dir, i) using 1:2 with linespoints ls i title word(titles, i)

set output out."/latency-p99-vs-load.png"
set title "Tail (p99) latency vs offered load, per group count"
set ylabel "p99 latency (ms, log scale, from intended send time)"
plot for [i=1:n] sprintf("%s/model%d.dat", dir, i) using 1:3 with linespoints ls i title word(titles, i)
unset logscale y

set output out."/max-throughput-vs-groups.png"
set title "Maximum throughput per model (closed loop, saturation)"
set xlabel "model"
set ylabel "throughput (successful requests/s)"
set xrange [*:*]
set yrange [0:*]
set key off
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.6
set xtics rotate by -30 nomirror
plot sprintf("%s/saturation.dat", dir) using 2:xtic(1) lc rgb "#1f77b4", \
     "" using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.8 notitle
