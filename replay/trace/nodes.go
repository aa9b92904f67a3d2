package trace

import (
	"fmt"
	"io"
	"os"
)

// Node is one row of a node list file: a machine the replay may place
// tasks on.
type Node struct {
	// Line is the 1-based line of the row in its file.
	Line int

	// SerialNumber is the sn column, unique within a file.
	SerialNumber string

	CPUMilli  int64
	MemoryMiB int64

	// GPUs is the number of GPUs, all of the same Model.
	GPUs int

	// Model is the GPU model, such as "T4" or "V100M32". It may be empty
	// only when GPUs is 0.
	Model string
}

var nodeColumns = []string{"sn", "cpu_milli", "memory_mib", "gpu", "model"}

// ReadNodes reads a node list file such as openb_node_list_gpu_node.csv.
// Like ReadTasks, it rejects the whole file at the first invalid row.
func ReadNodes(path string) ([]Node, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	defer file.Close()

	return ReadNodesFrom(file, path)
}

// ReadNodesFrom reads a node list from r. The name appears in error
// messages. A file without nodes is an error, because a replay needs a
// cluster.
func ReadNodesFrom(r io.Reader, name string) ([]Node, error) {
	table, err := openTable(r, name, nodeColumns)
	if err != nil {
		return nil, err
	}

	var nodes []Node
	firstLine := map[string]int{}
	for {
		more, err := table.next()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}

		node, err := parseNode(table, firstLine)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, node)
	}

	if len(nodes) == 0 {
		return nil, &ParseError{File: name, Line: table.line, Err: ErrNoRows}
	}

	return nodes, nil
}

// parseNode converts the current row. firstLine maps each serial number
// seen so far to its line, to reject duplicates.
func parseNode(t *table, firstLine map[string]int) (Node, error) {
	node := Node{Line: t.line}

	var err error
	node.SerialNumber, err = t.nonEmpty("sn")
	if err != nil {
		return Node{}, err
	}

	if line, seen := firstLine[node.SerialNumber]; seen {
		return Node{}, t.fail("sn", fmt.Errorf("%w %q: first used on line %d", ErrDuplicate, node.SerialNumber, line))
	}

	if err := parseNodeResources(t, &node); err != nil {
		return Node{}, err
	}

	firstLine[node.SerialNumber] = node.Line

	return node, nil
}

func parseNodeResources(t *table, node *Node) (err error) {
	node.CPUMilli, err = t.integer("cpu_milli", 0, maxInt64)
	if err != nil {
		return err
	}

	node.MemoryMiB, err = t.integer("memory_mib", 0, maxInt64)
	if err != nil {
		return err
	}

	gpus, err := t.integer("gpu", 0, MaxGPUsPerTask)
	if err != nil {
		return err
	}
	node.GPUs = int(gpus)

	node.Model = t.text("model")
	if node.GPUs > 0 && node.Model == "" {
		return t.fail("model", fmt.Errorf("%w: a node with %d GPUs needs a GPU model", ErrEmptyValue, node.GPUs))
	}

	return nil
}
