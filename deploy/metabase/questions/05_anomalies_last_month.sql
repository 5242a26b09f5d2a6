-- Anomalies for the monthly readout: unsubscribe spikes, flow suppression and conversion drops,
-- by detection date, with how far each day was from its baseline.
select
    a.detection_date,
    a.metric,
    a.platform,
    a.channel,
    a.flow_key,
    a.observed,
    a.expected,
    a.robust_z,
    a.severity,
    a.rule
from marts.fct_anomalies as a
where a.detection_date >= (select max(detection_date) from marts.fct_anomalies) - 31
order by a.detection_date desc, a.severity, a.metric
