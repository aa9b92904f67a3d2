package accounting_test

import (
	"testing"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
