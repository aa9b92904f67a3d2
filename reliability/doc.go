// Package reliability is schedulerd's reliability suite. Its tests kill, pause and cut off
// the daemon and the servers it depends on while jobs run. Then they check that no job was
// lost or run twice and that every GPU-hour was counted once. The tests build only with
// the reliability tag (`make reliability`, which `make test` runs), because they take
// minutes.
//
// Every scenario ends with the same invariant check (checkInvariants in invariants_test.go).
// Each uses a fixed random seed, which its log and failure messages print.
// SCHEDULERD_RELIABILITY_SEED reruns the scenarios with another seed.
//
// Scenarios that other packages already cover are not repeated here:
//
//   - S3 outage during checkpoint retention: retention.TestS3OutageDuringRetention and
//     retention.TestCrashAfterS3Delete.
//   - Pods that disappear (a running pod deleted, its node lost, an eviction, a completed
//     run's pod deleted later): dispatcher.TestDeletedPodPreempts,
//     dispatcher.TestLostNodePreempts and dispatcher.TestEvictionRequeuesFromCheckpoint.
//   - Hostile input: the fuzzers in scripts/fuzz.sh (api.FuzzSubmit, trace.FuzzReadTasks,
//     trace.FuzzReadNodes), api.TestSubmitOversizedBody, the invalid UTF-8 case of
//     api.TestSubmitRejectsBadRequests, api.TestRolesAndProjects (a token of one project
//     used on another), store.TestSQLMetacharactersStoredVerbatim and
//     api.TestSQLMetacharactersInFreeTextFields.
//
// A completed run's pod deleted later is covered by every scenario here: the dispatcher
// deletes each ended run's pod itself, and the invariant check finds the run as it ended.
package reliability
