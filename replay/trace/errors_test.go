package trace

import (
	"errors"
	"strings"
	"testing"
)

const taskHeader = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"

// validRow is a shared-GPU task created at 10, scheduled at 20 and deleted
// at 100.
var validRow = map[string]string{
	"name": "pod-1", "cpu_milli": "6000", "memory_mib": "12288", "num_gpu": "1", "gpu_milli": "460",
	"gpu_spec": "", "qos": "LS", "pod_phase": "Running", "creation_time": "10", "deletion_time": "100",
	"scheduled_time": "20",
}

// taskRow returns validRow as a CSV line with the given fields replaced,
// as alternating name, value pairs.
func taskRow(replacements ...string) string {
	row := map[string]string{}
	for field, value := range validRow {
		row[field] = value
	}
	for i := 0; i+1 < len(replacements); i += 2 {
		row[replacements[i]] = replacements[i+1]
	}

	var fields []string
	for _, name := range taskColumns {
		fields = append(fields, row[name])
	}

	return strings.Join(fields, ",") + "\n"
}

func TestReadTasksErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
		kind  error
	}{
		{"empty file", "", `pods.csv: empty file: want a CSV header line`, ErrEmptyFile},
		{"missing column", strings.Replace(taskHeader, ",qos", "", 1), `pods.csv:1: missing required column "qos"`, ErrMissingColumn},
		{"duplicate column", strings.TrimSuffix(taskHeader, "\n") + ",qos\n", `pods.csv:1: column qos (12): duplicate column`, ErrDuplicateColumn},
		{"field count", taskHeader + "pod-1,1,2\n", `pods.csv:2: wrong number of fields: got 3, want 11 as in the header`, ErrFieldCount},
		{"bare quote", taskHeader + `pod"1,` + "\n", `pods.csv:2: invalid CSV syntax: bare " in non-quoted-field at byte 4`, ErrSyntax},
		{"invalid integer", taskHeader + taskRow("num_gpu", "x"), `pods.csv:2: column num_gpu (4): invalid integer "x"`, ErrInvalidInteger},
		{"empty integer", taskHeader + taskRow("cpu_milli", ""), `pods.csv:2: column cpu_milli (2): invalid integer ""`, ErrInvalidInteger},
		{"negative", taskHeader + taskRow("memory_mib", "-1"), `pods.csv:2: column memory_mib (3): value -1 out of range: must not be negative`, ErrOutOfRange},
		{"too many GPUs", taskHeader + taskRow("num_gpu", "65"), `pods.csv:2: column num_gpu (4): value 65 out of range [0, 64]`, ErrOutOfRange},
		{"share too big", taskHeader + taskRow("gpu_milli", "1001"), `pods.csv:2: column gpu_milli (5): value 1001 out of range [0, 1000]`, ErrOutOfRange},
		{"over 64 bits", taskHeader + taskRow("cpu_milli", "99999999999999999999"), `pods.csv:2: column cpu_milli (2): value "99999999999999999999" out of range: does not fit in 64 bits`, ErrOutOfRange},
		{"time too big", taskHeader + taskRow("deletion_time", "9223372037"), `pods.csv:2: column deletion_time (10): value 9223372037 out of range [0, 9223372036]`, ErrOutOfRange},
		{"cpu-only share", taskHeader + taskRow("num_gpu", "0"), `pods.csv:2: column gpu_milli (5): inconsistent value: gpu_milli 460 with num_gpu 0, want 0 for a CPU-only task`, ErrInconsistent},
		{"zero share", taskHeader + taskRow("gpu_milli", "0"), `pods.csv:2: column gpu_milli (5): inconsistent value: gpu_milli 0 with num_gpu 1, want a share of 1 to 1000`, ErrInconsistent},
		{"multi-GPU share", taskHeader + taskRow("num_gpu", "2", "gpu_milli", "500"), `pods.csv:2: column gpu_milli (5): inconsistent value: gpu_milli 500 with num_gpu 2, want 1000 because multi-GPU tasks take whole GPUs`, ErrInconsistent},
		{"multi-GPU zero", taskHeader + taskRow("num_gpu", "4", "gpu_milli", "0"), `pods.csv:2: column gpu_milli (5): inconsistent value: gpu_milli 0 with num_gpu 4, want 1000 because multi-GPU tasks take whole GPUs`, ErrInconsistent},
		{"empty model", taskHeader + taskRow("gpu_spec", "T4||A10"), `pods.csv:2: column gpu_spec (6): empty value: model list "T4||A10" has an empty entry`, ErrEmptyValue},
		{"repeated model", taskHeader + taskRow("gpu_spec", "T4|A10|T4"), `pods.csv:2: column gpu_spec (6): duplicate value: model list "T4|A10|T4" names T4 twice`, ErrDuplicate},
		{"unknown qos", taskHeader + taskRow("qos", "ls"), `pods.csv:2: column qos (7): unknown value "ls": want LS, Guaranteed, Burstable or BE`, ErrUnknownValue},
		{"unknown phase", taskHeader + taskRow("pod_phase", "Evicted"), `pods.csv:2: column pod_phase (8): unknown value "Evicted": want Succeeded, Running, Pending or Failed`, ErrUnknownValue},
		{"deleted early", taskHeader + taskRow("deletion_time", "9"), `pods.csv:2: column deletion_time (10): inconsistent value: 9 is before creation_time 10`, ErrInconsistent},
		{"scheduled early", taskHeader + taskRow("scheduled_time", "9"), `pods.csv:2: column scheduled_time (11): inconsistent value: 9 is before creation_time 10`, ErrInconsistent},
		{"scheduled late", taskHeader + taskRow("scheduled_time", "101"), `pods.csv:2: column scheduled_time (11): inconsistent value: 101 is after deletion_time 100`, ErrInconsistent},
		{"scheduled invalid", taskHeader + taskRow("scheduled_time", " 20"), `pods.csv:2: column scheduled_time (11): invalid integer " 20"`, ErrInvalidInteger},
		{"empty name", taskHeader + taskRow("name", ""), `pods.csv:2: column name (1): empty value`, ErrEmptyValue},
		{"duplicate name", taskHeader + taskRow() + "\n" + taskRow(), `pods.csv:4: column name (1): duplicate value "pod-1": first used on line 2`, ErrDuplicate},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tasks, err := ReadTasksFrom(strings.NewReader(test.input), "pods.csv")
			if err == nil {
				t.Fatalf("ReadTasksFrom returned %d tasks and no error, want %q", len(tasks), test.want)
			}
			if err.Error() != test.want {
				t.Errorf("error = %q\nwant    %q", err, test.want)
			}
			if !errors.Is(err, test.kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, test.kind)
			}
			if tasks != nil {
				t.Errorf("tasks = %d, want nil with an error", len(tasks))
			}
		})
	}
}

func TestParseErrorFields(t *testing.T) {
	input := taskHeader + taskRow() + taskRow("name", "pod-2", "num_gpu", "x")

	_, err := ReadTasksFrom(strings.NewReader(input), "dir/pods.csv")

	var parseErr *ParseError
	if !errors.As(err, &parseErr) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	want := ParseError{File: "dir/pods.csv", Line: 3, Column: 4, Field: "num_gpu", Value: "x"}
	got := *parseErr
	got.Err = nil
	if got != want {
		t.Errorf("ParseError = %+v, want %+v", got, want)
	}
}

func TestReadNodesErrors(t *testing.T) {
	header := "sn,cpu_milli,memory_mib,gpu,model\n"
	tests := []struct {
		name  string
		input string
		want  string
		kind  error
	}{
		{"empty file", "", `nodes.csv: empty file: want a CSV header line`, ErrEmptyFile},
		{"header only", header, `nodes.csv:1: no data rows after the header`, ErrNoRows},
		{"missing column", "sn,cpu_milli,memory_mib,model\nn1,1,1,T4\n", `nodes.csv:1: missing required column "gpu"`, ErrMissingColumn},
		{"invalid integer", header + "n1,1,1,two,T4\n", `nodes.csv:2: column gpu (4): invalid integer "two"`, ErrInvalidInteger},
		{"negative", header + "n1,-8,1,2,T4\n", `nodes.csv:2: column cpu_milli (2): value -8 out of range: must not be negative`, ErrOutOfRange},
		{"too many GPUs", header + "n1,1,1,65,T4\n", `nodes.csv:2: column gpu (4): value 65 out of range [0, 64]`, ErrOutOfRange},
		{"no model", header + "n1,1,1,2,\n", `nodes.csv:2: column model (5): empty value: a node with 2 GPUs needs a GPU model`, ErrEmptyValue},
		{"empty sn", header + ",1,1,2,T4\n", `nodes.csv:2: column sn (1): empty value`, ErrEmptyValue},
		{"duplicate sn", header + "n1,1,1,2,T4\nn2,1,1,2,T4\nn1,1,1,2,T4\n", `nodes.csv:4: column sn (1): duplicate value "n1": first used on line 2`, ErrDuplicate},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			nodes, err := ReadNodesFrom(strings.NewReader(test.input), "nodes.csv")
			if err == nil {
				t.Fatalf("ReadNodesFrom returned %d nodes and no error, want %q", len(nodes), test.want)
			}
			if err.Error() != test.want {
				t.Errorf("error = %q\nwant    %q", err, test.want)
			}
			if !errors.Is(err, test.kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, test.kind)
			}
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	_, err := ReadTasks("testdata/no-such-file.csv")
	if err == nil || !strings.Contains(err.Error(), "read tasks: open testdata/no-such-file.csv") {
		t.Errorf("ReadTasks error = %v, want it to name the missing file", err)
	}

	_, err = ReadNodes("testdata/no-such-file.csv")
	if err == nil || !strings.Contains(err.Error(), "read nodes: open testdata/no-such-file.csv") {
		t.Errorf("ReadNodes error = %v, want it to name the missing file", err)
	}
}
