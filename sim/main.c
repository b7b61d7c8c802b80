/* servesim: command-line entry; dispatches to the subcommands in sim/cli_*.c. */
#include <stdio.h>
#include <string.h>

#include "sim/cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "servesim %s (%s): simulate and plan LLM serving deployments\n"
          "usage: servesim <command> [options]   (servesim <command> --help)\n"
          "  check     which parallel layouts fit, and why the others cannot\n"
          "  simulate  replay a trace or a load through a deployment\n"
          "  bench     an evalscope-style perf sweep over concurrencies\n"
          "  plan      search layouts and GPU counts for a workload under an SLO\n"
          "  trace     read, convert, scale or generate request traces\n"
          "  db        init | import | export | list the SQLite store\n",
          SERVESIM_VERSION, SERVESIM_GIT_COMMIT);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("servesim %s (%s)\n", SERVESIM_VERSION, SERVESIM_GIT_COMMIT);
    return 0;
  }
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } cmds[] = {{"check", cli_check}, {"simulate", cli_simulate}, {"bench", cli_bench},
              {"plan", cli_plan},   {"db", cli_db},             {"trace", cli_trace}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 2, argv + 2);
  fprintf(stderr, "servesim: unknown command '%s' (try servesim --help)\n", cmd);
  return 2;
}
