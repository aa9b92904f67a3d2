package metrics

// CronTaskFinished counts one finished run of a cron task, a success when err is nil. Call
// it on the replica that ran the task. The time of the last success is read from
// cron_task_status at scrape time instead, so every replica reports it.
func (m *Metrics) CronTaskFinished(task string, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.cronRuns.WithLabelValues(task, result).Inc()
}

// RetentionDeleted adds checkpoint objects that retention deleted, and their size in bytes.
// Call it once per deletion batch that S3 confirmed.
func (m *Metrics) RetentionDeleted(objects int, bytes int64) {
	if m == nil {
		return
	}
	m.retentionObjects.Add(float64(max(objects, 0)))
	m.retentionBytes.Add(float64(max(bytes, 0)))
}
