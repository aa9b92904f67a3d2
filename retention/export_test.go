package retention

import "context"

// SetHooks installs the test hooks; see Retainer.
func SetHooks(r *Retainer, beforeDelete, afterDelete func(context.Context) error) {
	r.beforeDelete, r.afterDelete = beforeDelete, afterDelete
}
