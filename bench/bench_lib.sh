# bench_lib.sh: pieces the device-side bench scripts share (bench_kernels.sh, bench_kernels_ab.sh,
# bench_env_sweep.sh); sourced, not run.

# cmake_cfg SRC BUILD: configure SRC's Release build in SRC/BUILD for sm_90 with the CPU
# dependencies scripts/device-deps.sh unpacked into /tmp/deps
cmake_cfg() { cmake -S "$1" -B "$1/$2" -DCMAKE_BUILD_TYPE=Release -DSERVESIM_DEPS_PREFIX=/tmp/deps -DCMAKE_CUDA_ARCHITECTURES=90; }

# gemm_sum FILE LO HI: a bench_kernels GEMM table's rows of LO <= M <= HI summed -- the columns:
# | shape | TP | K | N | M | w4a16 us | ... | cuBLAS bf16 us | ... -- with the points at or under
# cuBLAS and the worst ratio
gemm_sum() {
  awk -F'|' -v lo="$2" -v hi="$3" '$6 + 0 >= lo && $6 + 0 <= hi && $11 + 0 > 0 {
      s += $7; c += $11; n++; if ($7 + 0 <= $11 + 0) w++; r = $7 / $11; if (r > mx) mx = r }
    END { printf "%.1f us against cuBLAS %.1f, at or under %d/%d, worst %.2fx", s, c, w, n, mx }' "$1"
}

# valid FILE: whether that bench_kernels run validated every configuration it timed
valid() { grep -q "all configurations passed" "$1" && echo valid || echo "NOT VALIDATED"; }
