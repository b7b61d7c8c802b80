/* cli: the servesim subcommands. Each takes the arguments after its name and returns a process
 * exit status (0 ok, 1 layout rejected / SLO infeasible, 2 bad input or environment). */
#ifndef SERVESIM_CLI_H
#define SERVESIM_CLI_H

int cli_check(int argc, char **argv);    /* sim/cli_check.c */
int cli_simulate(int argc, char **argv); /* sim/cli_simulate.c */
int cli_bench(int argc, char **argv);    /* sim/cli_simulate.c (evalscope perf sweep) */
int cli_plan(int argc, char **argv);     /* sim/cli_plan.c */
int cli_db(int argc, char **argv);       /* sim/cli_db.c */
int cli_trace(int argc, char **argv);    /* sim/cli_trace.c: read/convert/generate traces */

#endif
