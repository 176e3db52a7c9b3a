-- Attendance and outcomes by teaching method (a session may use several: each counts for
-- every method it used), for the district and each officer's area, so that Q&A, video and
-- demonstration can be set beside lecture:
--   attendance: households present of those invited, at held sessions using the method;
--   practising: households trained at a session using the method (present at a held
--     training) that practise, of all of them;
--   income change: (Σ follow-up − Σ baseline) / Σ baseline of those of them with both.
WITH held AS (
    SELECT s.submission_key, s.village_code, s.activity_type, unnest(s.methods) AS method
    FROM sessions s
    WHERE s.held_date <= $today AND s.methods IS NOT NULL
),
owned AS (
    SELECT h.*, coalesce(r.officer_id, $district_id) AS officer_id,
           coalesce(r.officer_name, $district_name) AS officer_name
    FROM held h LEFT JOIN roster r ON r.tambon_code = left(h.village_code, 6)
),
-- each session's attendance counted once, before its rows meet the session's methods
session_turnout AS (
    SELECT submission_key, count(present) AS invited, count(*) FILTER (WHERE present) AS present
    FROM attendance GROUP BY submission_key
),
turnout AS (
    SELECT o.method, o.officer_id, o.officer_name, o.submission_key,
           coalesce(sum(t.invited), 0) AS invited, coalesce(sum(t.present), 0) AS present
    FROM owned o LEFT JOIN session_turnout t USING (submission_key)
    GROUP BY ALL
),
taught AS (
    -- each household once per method, however many of its sessions used it
    SELECT DISTINCT o.method, o.officer_id, a.hh_code
    FROM owned o JOIN attendance a USING (submission_key)
    WHERE a.present AND o.activity_type = 'training'
),
outcomes AS (
    SELECT t.method, t.officer_id, h.practising, h.baseline_income, h.followup_income
    FROM taught t JOIN household_outcomes h USING (hh_code)
),
by_session AS (
    SELECT CASE WHEN grouping(officer_id) = 0 THEN 'officer' ELSE 'district' END AS scope,
           method, officer_id, any_value(officer_name) AS officer_name,
           count(*) AS sessions, sum(invited) AS invited, sum(present) AS present
    FROM turnout GROUP BY GROUPING SETS ((method), (method, officer_id))
),
by_household AS (
    SELECT CASE WHEN grouping(officer_id) = 0 THEN 'officer' ELSE 'district' END AS scope,
           method, officer_id,
           count(*) AS trained,
           count(*) FILTER (WHERE practising IS NOT NULL) AS followed,
           count(*) FILTER (WHERE practising) AS practising,
           count(*) FILTER (WHERE baseline_income > 0 AND followup_income IS NOT NULL)
             AS n_income,
           sum(baseline_income) FILTER (WHERE baseline_income > 0
                                        AND followup_income IS NOT NULL) AS sum_baseline,
           sum(followup_income) FILTER (WHERE baseline_income > 0
                                        AND followup_income IS NOT NULL) AS sum_followup
    FROM outcomes GROUP BY GROUPING SETS ((method), (method, officer_id))
)
SELECT s.scope,
       CASE s.scope WHEN 'officer' THEN s.officer_id ELSE $district_id END AS scope_code,
       CASE s.scope WHEN 'officer' THEN s.officer_name ELSE $district_name END AS scope_name,
       s.method, method_th(s.method) AS method_th,
       s.sessions, s.invited, s.present,
       CASE WHEN s.invited > 0 THEN s.present / s.invited END AS attendance_rate,
       coalesce(h.trained, 0) AS trained, coalesce(h.followed, 0) AS followed,
       coalesce(h.practising, 0) AS practising,
       CASE WHEN h.trained > 0 THEN h.practising / h.trained END AS practising_rate,
       coalesce(h.n_income, 0) AS n_income,
       h.sum_followup - h.sum_baseline AS income_change_numerator,
       h.sum_baseline AS income_change_denominator,
       CASE WHEN h.sum_baseline > 0
            THEN (h.sum_followup - h.sum_baseline) / h.sum_baseline END AS income_change,
       $today AS as_of
FROM by_session s
LEFT JOIN by_household h
  ON h.scope = s.scope AND h.method = s.method
 AND h.officer_id IS NOT DISTINCT FROM s.officer_id
ORDER BY CASE s.scope WHEN 'district' THEN 0 ELSE 1 END, scope_code,
         CASE s.method WHEN 'lecture' THEN 0 ELSE 1 END, s.method
