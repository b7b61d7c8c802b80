set -u
export OUT
REF_TGZ=ref.tgz GPU_TESTS=1 TABLES="--mid --gemm+--m+17,24,32,48,64,100,200 --gemm+--m+1024,4096" bash bench/bench_kernels_ab.sh HEAD 2
SERVESIM_W4WS_LOG=1 build-gpu/bench/bench_kernels --gemm --m 100,128,200,256,1024,4096 > $OUT/ab/log-new.txt 2>&1
cd $OUT && tar czf ab.tgz ab && rm -rf ab
