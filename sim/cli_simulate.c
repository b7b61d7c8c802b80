/* PLACEHOLDER until its owner lands the real file: replace wholesale. */
#include <stdio.h>
#include "sim/cli.h"
int cli_simulate(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "servesim: simulate: not built yet\n"); return 2; }
int cli_bench(int argc, char **argv) { (void)argc; (void)argv; return 2; }
