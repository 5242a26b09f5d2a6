-- The operating record's hypothesis queue (cfg_hypotheses, from the job's operating_record file),
-- published so the dashboard, which reads only published marts, can list what is tested next
-- beside fct_intervention_readout. The flow is matched as the readout matches it: by platform id
-- first, else by exact name when one flow of the platform has it.
with hypotheses as (
    select
        trim(hypothesis_id) as hypothesis_id,
        coalesce(platform, 'klaviyo') as platform,
        flow,
        hypothesis,
        expected_effect,
        cast(priority as int) as priority,
        coalesce(status, 'queued') as status
    from cfg_hypotheses
),

by_id as (
    select h.hypothesis_id, f.flow_key, f.flow_name, f.flow_type
    from hypotheses as h
    join int_flows as f on f.platform = h.platform and f.flow_id = h.flow
),

by_name as (
    select h.hypothesis_id, min(f.flow_key) as flow_key, min(f.flow_name) as flow_name,
           min(f.flow_type) as flow_type, count(*) as flows
    from hypotheses as h
    join int_flows as f on f.platform = h.platform and f.flow_name = h.flow
    group by h.hypothesis_id
)

select
    h.hypothesis_id,
    h.platform,
    h.flow,
    coalesce(i.flow_key, case when n.flows = 1 then n.flow_key end) as flow_key,
    coalesce(i.flow_name, case when n.flows = 1 then n.flow_name end) as flow_name,
    coalesce(i.flow_type, case when n.flows = 1 then n.flow_type end) as flow_type,
    h.hypothesis,
    h.expected_effect,
    h.priority,
    h.status,
    -- Queued hypotheses in the order to test them: priority (1 first, none last), then id.
    case when h.status = 'queued' then cast(row_number() over (
        partition by h.status = 'queued' order by h.priority asc nulls last, h.hypothesis_id
    ) as int) end as queue_rank,
    '1.0.0' as model_version
from hypotheses as h
left join by_id as i on i.hypothesis_id = h.hypothesis_id
left join by_name as n on n.hypothesis_id = h.hypothesis_id
