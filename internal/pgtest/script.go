package pgtest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// RunScript runs scripts/NAME of the module with args and returns its combined output in
// the error when it fails. The test servers' start and stop scripts all run this way.
func RunScript(name string, args ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmdArgs := append([]string{filepath.Join(root, "scripts", name)}, args...)
	if out, err := exec.Command("bash", cmdArgs...).CombinedOutput(); err != nil {
		return fmt.Errorf("run scripts/%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
