package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Group is a set of settings that a command reads together or not at all.
type Group int

const (
	// Core is the group of the database, the Kubernetes client, scheduling, logging and the
	// admin API.
	Core Group = iota
	// LeaderElection is the group of the Lease that picks the replica that schedules.
	LeaderElection
	// Cron is the group of the cron schedules and of the tasks' settings: partitions, S3
	// and checkpoint retention.
	Cron
	// Temporal is the group of the Temporal worker that runs job workflows.
	Temporal
	// APIClient is the group of the CLI's API URL and token.
	APIClient
)

// groupSettings lists each group's settings, in the order that help text lists them.
var groupSettings = [][]setting{
	Core:           coreSettings,
	LeaderElection: leaderElectionSettings,
	Cron:           cronSettings,
	Temporal:       temporalSettings,
	APIClient:      apiClientSettings,
}

// settings is every setting, each in one group.
var settings = slices.Concat(groupSettings...)

// Flags returns the flag names of the settings in groups, for LoadOnly.
func Flags(groups ...Group) []string {
	var names []string
	for _, g := range groups {
		for _, s := range groupSettings[g] {
			names = append(names, s.flag)
		}
	}
	return names
}

var leaderElectionSettings = []setting{
	{"leader-election", "SCHEDULERD_LEADER_ELECTION",
		"true or false: hold the Lease named schedulerd, so that only its holder schedules; false is for a single replica only",
		"true",
		func(c *Config, v string) (err error) { c.LeaderElection, err = parseBool(v); return }},
	{"leader-election-namespace", "SCHEDULERD_LEADER_ELECTION_NAMESPACE",
		"namespace of the Lease; empty uses the pod's own namespace, or default outside a cluster", "",
		func(c *Config, v string) error { c.LeaderElectionNamespace = v; return nil }},
}

var temporalSettings = []setting{
	{"temporal-address", "SCHEDULERD_TEMPORAL_ADDRESS",
		"host:port of a Temporal frontend, or a gRPC target such as dns:///temporal:7233; empty runs jobs without workflows", "",
		func(c *Config, v string) error { c.TemporalAddress = v; return validateTemporalAddress(v) }},
	{"temporal-namespace", "SCHEDULERD_TEMPORAL_NAMESPACE", "Temporal namespace of the job workflows", "default",
		func(c *Config, v string) error { c.TemporalNamespace = v; return nil }},
}

var apiClientSettings = []setting{
	{"api-url", "SCHEDULERD_API_URL",
		"admin API of a running schedulerd, such as http://127.0.0.1:8080; empty uses http:// and -http-addr", "",
		func(c *Config, v string) error { c.APIURL = v; return nil }},
	{"token", "SCHEDULERD_TOKEN",
		"API token, which an admin creates with 'schedulerd token create'; the variable keeps it out of the process list", "",
		func(c *Config, v string) error { c.Token = v; return nil }},
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("want true or false, got %q", v)
	}
	return b, nil
}

// validateTemporalAddress accepts an empty address, host:port as validateAddr checks it, or
// a gRPC target SCHEME:///VALUE, which the Temporal Go SDK (v1.51.0, client.Options.HostPort)
// hands to the gRPC resolver of that scheme.
func validateTemporalAddress(v string) error {
	if v == "" {
		return nil
	}
	if scheme, _, ok := strings.Cut(v, ":///"); ok && scheme != "" {
		return nil
	}
	if err := validateAddr(v); err != nil {
		return fmt.Errorf("%w (or a gRPC target such as dns:///temporal:7233)", err)
	}
	return nil
}
