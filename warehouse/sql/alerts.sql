-- Follow-up alerts as of $today. Each rule yields (rule, subject, area, reasons);
-- the tail assigns the officer who covers the tambon and keeps first_seen from yesterday.
WITH held AS (
    SELECT s.session_code, s.held_date, a.hh_code, a.present
    FROM sessions s JOIN attendance a USING (submission_key)
    WHERE s.held_date IS NOT NULL AND s.held_date <= $today AND a.present IS NOT NULL
),
attendance_per_hh AS (
    SELECT hh_code,
           count(*) AS invited,
           count(*) FILTER (WHERE present) AS attended,
           list(present ORDER BY held_date DESC, session_code DESC)[1:2] AS last_two
    FROM held GROUP BY hh_code
),
trained AS (
    SELECT hh_code, min(held_date) AS first_trained FROM held WHERE present GROUP BY hh_code
),
handed_out AS (
    SELECT hh_code, min(handout_date) AS first_handout
    FROM materials WHERE handout_date IS NOT NULL GROUP BY hh_code
),
found AS (
    SELECT 'R03_LOW_ATTENDANCE' AS rule_id, 'household' AS subject_type, hh_code AS subject_id,
           2 AS priority,
           CASE WHEN len(last_two) = 2 AND NOT last_two[1] AND NOT last_two[2]
                THEN 'ขาดการอบรม 2 ครั้งติดต่อกัน; ' ELSE '' END
             || 'เข้าร่วม ' || attended || ' จาก ' || invited || ' ครั้ง ('
             || round(100.0 * attended / invited)::INT || '%)' AS reason_th,
           CASE WHEN len(last_two) = 2 AND NOT last_two[1] AND NOT last_two[2]
                THEN 'absent from the last two sessions; ' ELSE '' END
             || 'attended ' || attended || ' of ' || invited || ' sessions ('
             || round(100.0 * attended / invited)::INT || '%)' AS reason_en
    FROM attendance_per_hh
    WHERE invited >= 2
      AND (attended < $min_attendance * invited
           OR (len(last_two) = 2 AND NOT last_two[1] AND NOT last_two[2]))

    UNION ALL
    SELECT 'R04_TRAINED_NO_MATERIALS', 'household', t.hh_code, 2,
           'ผ่านการอบรมเมื่อ ' || strftime(t.first_trained, '%d/%m/') || (year(t.first_trained) + 543)
             || ' แต่ยังไม่ได้รับวัสดุอุปกรณ์ (เกิน ' || $materials_days || ' วัน)',
           'trained on ' || t.first_trained || ' but no materials after '
             || $materials_days || ' days'
    FROM trained t
    WHERE t.first_trained + $materials_days < $today
      AND NOT EXISTS (SELECT 1 FROM materials m WHERE m.hh_code = t.hh_code)

    UNION ALL
    SELECT 'R05_NO_FOLLOWUP_INCOME', 'household', g.hh_code, 3,
           'ได้รับวัสดุเมื่อ ' || strftime(g.first_handout, '%d/%m/') || (year(g.first_handout) + 543)
             || ' แต่ยังไม่มีการสำรวจรายได้ติดตามผล (เกิน ' || $followup_days || ' วัน)',
           'materials received on ' || g.first_handout || ' but no follow-up income survey after '
             || $followup_days || ' days'
    FROM handed_out g
    WHERE g.first_handout + $followup_days < $today
      AND NOT EXISTS (
          SELECT 1 FROM income_surveys i
          WHERE i.hh_code = g.hh_code AND i.round = 'followup' AND i.survey_date >= g.first_handout)
),
household_alerts AS (
    SELECT f.*, h.head_name AS subject_name, h.phone,
           coalesce(h.village_code, split_part(f.subject_id, '-', 1)) AS village_code
    FROM found f JOIN households h ON h.hh_code = f.subject_id  -- live, approved targets only
),
data_to_fix AS (
    SELECT 'R09_DATA_TO_FIX' AS rule_id, 'submission' AS subject_type,
           form_id || ':' || coalesce(business_key, submission_id) AS subject_id, 1 AS priority,
           'แบบ ' || form_id || ' ส่งเมื่อ ' || strftime(min(submitted_at), '%d/%m/')
             || (year(min(submitted_at)) + 543)
             || ' (รหัสส่ง ' || submission_id || '): '
             || string_agg(DISTINCT reason_th, '; ' ORDER BY reason_th) AS reason_th,
           'form ' || form_id || ' submitted ' || strftime(min(submitted_at), '%Y-%m-%d')
             || ' (submission ' || submission_id || '): '
             || string_agg(DISTINCT reason_en, '; ' ORDER BY reason_en) AS reason_en,
           NULL AS subject_name, NULL AS phone, any_value(village_code) AS village_code
    FROM quarantine_all
    GROUP BY form_id, business_key, submission_id
),
everything AS (
    SELECT * FROM household_alerts
    UNION ALL BY NAME
    SELECT * FROM data_to_fix
)
SELECT e.rule_id || ':' || e.subject_id AS alert_id,
       e.rule_id,
       CASE e.rule_id
           WHEN 'R03_LOW_ATTENDANCE' THEN 'เข้าร่วมอบรมน้อย'
           WHEN 'R04_TRAINED_NO_MATERIALS' THEN 'อบรมแล้วยังไม่ได้รับวัสดุ'
           WHEN 'R05_NO_FOLLOWUP_INCOME' THEN 'ยังไม่ติดตามรายได้'
           WHEN 'R09_DATA_TO_FIX' THEN 'ข้อมูลต้องแก้ไข'
       END AS rule_th,
       CASE e.rule_id
           WHEN 'R03_LOW_ATTENDANCE' THEN 'Low attendance'
           WHEN 'R04_TRAINED_NO_MATERIALS' THEN 'Trained, no materials'
           WHEN 'R05_NO_FOLLOWUP_INCOME' THEN 'No follow-up income survey'
           WHEN 'R09_DATA_TO_FIX' THEN 'Data to fix'
       END AS rule_en,
       e.priority, e.subject_type, e.subject_id, e.subject_name, e.phone,
       e.village_code, left(e.village_code, 6) AS tambon_code,
       coalesce(r.officer_id, $district_id) AS officer_id,
       coalesce(r.officer_name, $district_name) AS officer_name,
       e.reason_th, e.reason_en,
       $today + $act_days AS due_date,
       coalesce(p.first_seen, $today) AS first_seen,
       $today AS last_seen,
       'open' AS status
FROM everything e
LEFT JOIN roster r ON r.tambon_code = left(e.village_code, 6)
LEFT JOIN previous_alerts p ON p.alert_id = e.rule_id || ':' || e.subject_id
ORDER BY officer_id, e.priority, tambon_code, e.village_code, e.rule_id, e.subject_id
