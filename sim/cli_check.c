/* PLACEHOLDER until its owner lands the real file: replace wholesale. */
#include <stdio.h>
#include "sim/cli.h"
int cli_check(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "servesim: check: not built yet\n"); return 2; }
