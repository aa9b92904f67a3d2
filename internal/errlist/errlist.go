// Package errlist joins independent errors of one operation, such as the failed buckets of
// a retention run, into one go-multierror error whose message fits on one log line.
package errlist

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Join collects the non-nil errors in errs, in order, into a *multierror.Error whose
// message counts them and separates them with "; ", as in
// "2 errors: bucket a: access denied; bucket b: timed out". It returns nil when errs has no
// error. A single error keeps its own message, and a *multierror.Error in errs adds its
// errors to the list one by one. errors.Is and errors.As reach each error through the
// Unwrap chain of go-multierror v1.1.1.
//
// The message has no newlines, unlike go-multierror's default list, because slog's JSON
// and text handlers escape a newline as \n, which turns a list into one long run of text.
func Join(errs ...error) error {
	joined := multierror.Append(nil, errs...)
	joined.ErrorFormat = formatOneLine
	return joined.ErrorOrNil()
}

// formatOneLine is a multierror.ErrorFormatFunc that writes the count and the messages on
// one line.
func formatOneLine(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}

	messages := make([]string, len(errs))
	for i, err := range errs {
		messages[i] = err.Error()
	}
	return fmt.Sprintf("%d errors: %s", len(errs), strings.Join(messages, "; "))
}
