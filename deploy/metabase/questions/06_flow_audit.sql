-- The flow audit: every flow's trigger, branching depth, content recency and calibration status
-- (calibrated, running on defaults, stale, missing, needs review), latest audit.
select
    a.platform,
    a.flow_name,
    a.flow_type,
    a.status,
    a.trigger_type,
    a.branching_depth,
    a.days_since_content_update,
    a.calibration_status,
    a.calibration_reasons,
    a.sends_l30d,
    a.incremental_revenue_l90d,
    a.evidence_grade
from marts.fct_flow_audit as a
where a.audit_date = (select max(audit_date) from marts.fct_flow_audit)
order by a.calibration_status, a.platform, a.flow_name
