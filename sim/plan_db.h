/* plan_db: a plan's answer as rows in the SQLite store (db/db.h), for `servesim plan --db`.
 *
 * Each simulated candidate becomes a run (kind "simulated", label "plan") with its summary at the
 * nominal load and run_metrics for the planner's own figures (tok/s per GPU, $/Mtok, the highest
 * sustained load, SLO met, Pareto membership, rank); each rejected layout becomes a layouts row
 * with its failed rules. One transaction: a failure leaves the database as it was. */
#ifndef SERVESIM_PLAN_DB_H
#define SERVESIM_PLAN_DB_H

#include "sim/model.h"
#include "sim/plan.h"

int plan_db_store(const char *path, const struct plan_result *r, const struct model_spec *m);

#endif
