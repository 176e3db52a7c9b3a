-- What the officers' follow-up visits achieved, for the district and each officer, over all
-- rules and per rule (rule_id NULL: all rules):
--   closed_by_visit / closed_by_data  alerts resolved by a follow-up visit, or because the data
--                                      no longer show them — of the resolved alerts the alerts
--                                      mart keeps ([alerts] keep_resolved_days)
--   days_to_close                      median days from first seen to the visit that closed it
--   items_open / items_visited         the worklist's items today, and how many of them were
--                                      visited (reached or not) within [alerts] reopen_after_days:
--                                      follow-up coverage (all rules only)
WITH resolved AS (
    SELECT officer_id, officer_name, rule_id, rule_th, closed_by_visit IS NOT NULL AS by_visit,
           resolved_on - first_seen AS days
    FROM alerts WHERE status = 'resolved'
),
closing AS (
    SELECT CASE WHEN grouping(officer_id) = 0 THEN 'officer' ELSE 'district' END AS scope,
           officer_id, any_value(officer_name) AS officer_name, rule_id,
           any_value(rule_th) AS rule_th,
           count(*) FILTER (WHERE by_visit) AS closed_by_visit,
           count(*) FILTER (WHERE NOT by_visit) AS closed_by_data,
           median(days) FILTER (WHERE by_visit) AS days_to_close
    FROM resolved
    GROUP BY GROUPING SETS ((), (officer_id), (rule_id), (officer_id, rule_id))
    HAVING count(*) > 0  -- nothing resolved, nothing to say (not a row of zeros)
),
recent AS (
    SELECT DISTINCT item_id FROM followup_visits
    WHERE visit_date > $today - $reopen_days AND visit_date <= $today
),
coverage AS (
    SELECT CASE WHEN grouping(officer_id) = 0 THEN 'officer' ELSE 'district' END AS scope,
           officer_id, any_value(officer_name) AS officer_name,
           count(*) AS items_open, count(r.item_id) AS items_visited
    FROM worklist w LEFT JOIN recent r USING (item_id)
    GROUP BY GROUPING SETS ((), (officer_id))
    HAVING count(*) > 0
)
SELECT coalesce(c.scope, v.scope) AS scope,
       CASE WHEN coalesce(c.scope, v.scope) = 'district' THEN $district_id
            ELSE coalesce(c.officer_id, v.officer_id) END AS scope_code,
       CASE WHEN coalesce(c.scope, v.scope) = 'district' THEN $district_name
            ELSE coalesce(c.officer_name, v.officer_name) END AS scope_name,
       c.rule_id, c.rule_th,
       coalesce(c.closed_by_visit, 0) AS closed_by_visit,
       coalesce(c.closed_by_data, 0) AS closed_by_data,
       c.days_to_close::DOUBLE AS days_to_close,
       v.items_open, v.items_visited,
       v.items_visited / nullif(v.items_open, 0) AS coverage,
       $today AS as_of
FROM (SELECT * FROM closing WHERE rule_id IS NULL) c
FULL JOIN coverage v
  ON v.scope = c.scope AND v.officer_id IS NOT DISTINCT FROM c.officer_id
UNION ALL BY NAME
SELECT scope, CASE WHEN scope = 'district' THEN $district_id ELSE officer_id END AS scope_code,
       CASE WHEN scope = 'district' THEN $district_name ELSE officer_name END AS scope_name,
       rule_id, rule_th, closed_by_visit, closed_by_data, days_to_close::DOUBLE AS days_to_close,
       NULL::BIGINT AS items_open, NULL::BIGINT AS items_visited, NULL::DOUBLE AS coverage,
       $today AS as_of
FROM closing WHERE rule_id IS NOT NULL
ORDER BY scope, scope_code, rule_id NULLS FIRST
