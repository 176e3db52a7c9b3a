-- One row per target household as of $today: training, materials, baseline and latest
-- follow-up income. The alerts (R03-R06) and the KPIs are read from here, so they agree.
WITH held AS (
    SELECT s.session_code, s.held_date, a.hh_code, a.present
    FROM sessions s JOIN attendance a USING (submission_key)
    WHERE s.held_date IS NOT NULL AND s.held_date <= $today AND a.present IS NOT NULL
),
per_hh AS (
    SELECT hh_code,
           count(*) AS sessions_invited,
           count(*) FILTER (WHERE present) AS sessions_attended,
           min(held_date) FILTER (WHERE present) AS first_trained,
           -- top-2 by (held date, session code), newest first: cheaper than an ordered list()
           max_by(present, (held_date, session_code), 2) AS last_two
    FROM held GROUP BY hh_code
),
handout AS (
    SELECT hh_code, min(handout_date) AS first_handout, count(*) AS handouts
    FROM materials GROUP BY hh_code
),
baseline AS (
    SELECT hh_code, hh_income AS baseline_survey_income
    FROM income_surveys
    WHERE round = 'baseline' AND hh_income IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY hh_code
        ORDER BY survey_date DESC NULLS LAST, submitted_at DESC NULLS LAST, submission_key DESC) = 1
),
followup AS (
    SELECT hh_code, survey_date AS followup_date, hh_income AS followup_income, practising,
           problem AS followup_problem, action_agreed AS followup_action
    FROM income_surveys
    WHERE round = 'followup' AND coalesce(survey_date, $today) <= $today
    QUALIFY row_number() OVER (PARTITION BY hh_code
        ORDER BY survey_date DESC NULLS LAST, submitted_at DESC NULLS LAST, submission_key DESC) = 1
),
-- Only registered households: one whose registration a reviewer rejected leaves every mart
-- (forms naming an unregistered household are the validation's business: R09).
registered AS (
    SELECT * FROM households
    QUALIFY row_number() OVER (PARTITION BY hh_code ORDER BY submitted_at DESC NULLS LAST) = 1
)
SELECT r.hh_code,
       coalesce(r.village_code, split_part(r.hh_code, '-', 1)) AS village_code,
       left(coalesce(r.village_code, split_part(r.hh_code, '-', 1)), 6) AS tambon_code,
       r.head_name, r.phone, r.occupation, r.house_no, r.village_name, r.lat, r.lon,
       coalesce(p.sessions_invited, 0) AS sessions_invited,
       coalesce(p.sessions_attended, 0) AS sessions_attended,
       coalesce(len(p.last_two) = 2 AND NOT p.last_two[1] AND NOT p.last_two[2], false)
         AS absent_last_two,
       p.first_trained,
       p.first_trained IS NOT NULL AS trained,
       h.first_handout,
       coalesce(b.baseline_survey_income, r.baseline_income) AS baseline_income,
       f.followup_date, f.followup_income, f.practising, f.followup_problem, f.followup_action,
       CASE WHEN coalesce(b.baseline_survey_income, r.baseline_income) > 0
            THEN f.followup_income / coalesce(b.baseline_survey_income, r.baseline_income) - 1
       END AS income_change
FROM registered r
LEFT JOIN per_hh p USING (hh_code)
LEFT JOIN handout h USING (hh_code)
LEFT JOIN baseline b USING (hh_code)
LEFT JOIN followup f USING (hh_code)
ORDER BY r.hh_code
