import client from 'prom-client';

/**
 * Every Prometheus series of the gateway, defined once, on a registry per app (tests build
 * several apps in one process). Each message ends as exactly one of accepted, duplicate or
 * rejected-with-reason, and each is counted here.
 */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'sitegate_process_' });
  const c = <T extends string>(name: string, help: string, labelNames: T[]) => new client.Counter({ name, help, labelNames, registers: [registry] });
  const g = <T extends string>(name: string, help: string, labelNames: T[] = []) => new client.Gauge({ name, help, labelNames, registers: [registry] });
  const h = <T extends string>(name: string, help: string, buckets: number[], labelNames: T[] = []) =>
    new client.Histogram({ name, help, buckets, labelNames, registers: [registry] });
  return {
    registry,
    accepted: c('sitegate_messages_accepted_total', 'Messages stored in the ledger', ['kind', 'via']),
    duplicates: c('sitegate_messages_duplicate_total', 'Messages already stored (same deviceId + id), counted once', ['kind', 'via']),
    rejected: c('sitegate_messages_rejected_total', 'Messages refused for their content, by reason', ['reason', 'via']),
    aclRefusals: c('sitegate_acl_refusals_total', 'Publishes or subscriptions outside a client\'s topics', ['reason', 'action']),
    authFailures: c('sitegate_auth_failures_total', 'Failed MQTT or API authentications', ['transport']),
    /** Read at each scrape (`collect`, app.ts) from the registry. */
    registryLookupsShed: c('sitegate_registry_lookups_shed_total', 'Region mode: unknown device, site or token ids refused without a database lookup, lookups being over their budget (a flood of unknown ids)', []),
    mqttClients: g('sitegate_mqtt_clients', 'Connected MQTT clients'),
    deviceThrottled: c('sitegate_device_throttled_total', 'Publishes after which a device above its ingest rate was read more slowly', ['device']),
    deviceThrottledSeconds: c('sitegate_device_throttled_seconds_total', 'Time a device above its ingest rate waited before its connection was read again', ['device']),
    /** Set by the check runner at each scrape (`collect`): committed records a check has not been through yet. */
    checkLag: g('sitegate_check_lag_records', 'Committed ledger records each check has not been through yet (its queue, the step in hand, a replay)', ['check']),
    checkFailures: c('sitegate_check_failures_total', 'Batches, ticks, starts and stops a check failed on (logged; the check goes on)', ['check', 'phase']),
    ledgerBacklog: g('sitegate_ledger_backlog', 'Records waiting for or in a group commit (queue depth)'),
    ledgerCommitSeconds: h('sitegate_ledger_commit_seconds', 'Group commit duration including fsync', [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1]),
    ledgerGroupSize: h('sitegate_ledger_group_size', 'Records per group commit (one fsync each)', [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]),
    ledgerLastSeq: g('sitegate_ledger_last_seq', 'Highest committed ledger position'),
    sinkLagRecords: g('sitegate_sink_lag_records', 'Ledger records not yet confirmed by a sink', ['sink']),
    sinkLagSeconds: g('sitegate_sink_lag_seconds', 'Age of the oldest record not yet confirmed by a sink', ['sink']),
    sinkWritten: c('sitegate_sink_points_written_total', 'Points confirmed by a sink', ['sink']),
    sinkErrors: c('sitegate_sink_errors_total', 'Failed sink writes, by class', ['sink', 'class']),
    sinkDeadLetters: c('sitegate_sink_dead_letters_total', 'Points a sink refused as bad data, kept aside', ['sink']),
    httpErrors: c('sitegate_http_errors_total', 'HTTP error answers, by code', ['code']),
    faceQueueDepth: g('sitegate_face_queue_depth', 'Face check-ins of the step in hand waiting for a pool worker + photos queued in the pool (check-ins not yet in a step: sitegate_check_lag_records{check="face-verification"})'),
    faceAnalysisSeconds: h('sitegate_face_analysis_seconds', 'Face analysis per photo in the worker pool, queue wait included', [0.01, 0.02, 0.04, 0.06, 0.1, 0.2, 0.5, 1, 2, 5, 10], ['outcome']),
    faceCheckinSeconds: h('sitegate_face_checkin_seconds', 'Face check-in receipt to durable verdict', [0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60]),
    loopDelayP99: g('sitegate_event_loop_delay_p99_seconds', 'Event-loop delay, 99th percentile over the last window (perf_hooks.monitorEventLoopDelay)'),
    loopDelayMax: g('sitegate_event_loop_delay_max_seconds', 'Event-loop delay, maximum over the last window: the longest a PUBACK or /healthz waited behind synchronous work'),
    commands: c('sitegate_commands_total', 'Commands to site equipment (contract §7) by what happened: created, delivered (PUBACK), succeeded, failed, expired (undelivered by expiresAt), expired_unanswered (delivered, no answer in time), late_result (an answer after that)', ['event']),
    webhookDeliveries: c('sitegate_webhook_deliveries_total', 'Webhook delivery attempts by outcome: delivered (2xx), retried (kept pending with back-off), failed (gave up after 24 h)', ['outcome']),
    webhookPending: g('sitegate_webhook_deliveries_pending', 'Webhook deliveries not yet delivered or failed (the outbox)'),
    faceVerdicts: c('sitegate_face_verdicts_total', 'Face check-in verdicts, by verdict', ['verdict']),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Computes a metric's value from its source each time /metrics is scraped (prom-client's `collect`). */
export function collectAtScrape(metric: client.Counter | client.Gauge, collect: () => void): void {
  (metric as unknown as { collect?: () => void }).collect = collect;
}
