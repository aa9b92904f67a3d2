-- The node sizes of each GPU model. The largest_node_* columns are each resource's maximum,
-- which may come from different nodes: a model with an 8-GPU, 64-core node and a 16-GPU,
-- 16-core node has largest values of 16 GPUs and 64 cores, though no node has both. A pod
-- that fits those maximums but no real node stays Pending until the unschedulable timeout
-- requeues it, and is admitted again. node_shapes lists, for each size that no other node
-- of the model covers in all three resources, its GPU thousandths, CPU thousandths and
-- memory in MiB, as [{"gpu_milli": 8000, "cpu_milli": 64000, "memory_mib": 262144}, ...],
-- so that submission and admission can ask whether one node holds the pod.
ALTER TABLE gpu_models ADD COLUMN node_shapes jsonb NOT NULL DEFAULT '[]'
    CHECK (jsonb_typeof(node_shapes) = 'array');

---- create above / drop below ----

ALTER TABLE gpu_models DROP COLUMN node_shapes;
