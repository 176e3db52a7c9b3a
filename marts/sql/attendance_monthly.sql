-- Attendance per village and month of the sessions held up to $today (chart: who comes).
SELECT s.village_code,
       left(s.village_code, 6) AS tambon_code,
       date_trunc('month', s.held_date)::DATE AS month,
       count(DISTINCT s.session_code) AS sessions,
       count(*) AS invited,
       count(*) FILTER (WHERE a.present) AS present,
       count(*) FILTER (WHERE a.present) / count(*) AS attendance_rate
FROM sessions s JOIN attendance a USING (submission_key)
WHERE s.held_date IS NOT NULL AND s.held_date <= $today AND a.present IS NOT NULL
GROUP BY ALL
ORDER BY village_code, month
