-- Follow-up alerts as of $today, with their lifecycle.
-- Each rule yields (rule, subject, area, reasons, own due date if it has one: a date the plan
-- fixes, which passes and makes the alert overdue like any other); the tail keeps
-- first_seen from yesterday's mart, applies the officers' snoozes, marks what cleared as
-- resolved (kept $keep_resolved_days days) and what a follow-up visit resolved as closed by it
-- (for $reopen_days days), and assigns the officer who covers the tambon.
WITH upcoming AS (
    -- not held yet (a held_date in the future is a plan too)
    SELECT s.submission_key, s.session_code, s.village_code, s.planned_date, s.activity_type
    FROM sessions s
    WHERE (s.held_date IS NULL OR s.held_date > $today)
      AND s.planned_date BETWEEN $today AND $today + $upcoming_days
),
invited AS (
    SELECT u.*, a.hh_code FROM upcoming u JOIN attendance a USING (submission_key)
    SEMI JOIN household_outcomes o ON o.hh_code = a.hh_code  -- registered households only
    UNION ALL
    -- a plan without an invitation list: every household of the village
    SELECT u.*, o.hh_code FROM upcoming u JOIN household_outcomes o USING (village_code)
    WHERE NOT EXISTS (SELECT 1 FROM attendance a WHERE a.submission_key = u.submission_key)
),
sages_latest AS (
    SELECT * FROM sages
    QUALIFY row_number() OVER (PARTITION BY sage_code ORDER BY submitted_at DESC NULLS LAST) = 1
),
turnout AS (
    SELECT submission_key, count(*) AS invited, count(*) FILTER (WHERE present) AS present
    FROM attendance GROUP BY submission_key
),
session_days AS (
    SELECT s.*, coalesce(s.held_date, s.planned_date) AS on_day,
           s.held_date IS NOT NULL AND s.held_date <= $today AS held
    FROM sessions s
    WHERE ((s.held_date IS NULL OR s.held_date > $today) AND s.planned_date >= $today)
       OR s.held_date BETWEEN $today - $season_recent_days AND $today
),
in_season AS (
    SELECT d.*, w.name_th AS season_th, w.name_en AS season_en
    FROM session_days d JOIN season_windows w
      ON w.province_code = CASE
             WHEN left(d.village_code, 2) IN (SELECT province_code FROM season_windows)
             THEN left(d.village_code, 2) ELSE '*' END
    WHERE CASE WHEN w.start_md <= w.end_md
               THEN month(d.on_day) * 100 + day(d.on_day) BETWEEN w.start_md AND w.end_md
               ELSE month(d.on_day) * 100 + day(d.on_day) >= w.start_md
                 OR month(d.on_day) * 100 + day(d.on_day) <= w.end_md END
    QUALIFY row_number() OVER (PARTITION BY d.session_code ORDER BY w.start_md) = 1
),
outcome_checks AS (
    SELECT o.*,
           coalesce(o.income_change <= $min_income_change, false) AS income_not_up
    FROM household_outcomes o
    WHERE o.followup_date IS NOT NULL
),
village_training AS (
    SELECT village_code, min(first_trained) AS first_trained, count(*) AS n_trained
    FROM household_outcomes WHERE trained GROUP BY village_code
),
sage_sessions AS (
    SELECT d.sage_code, d.session_code, d.village_code, d.on_day, d.held,
           NOT d.held AND d.on_day >= $today AS to_come, d.occupation, g.expertise,
           g.sage_code IS NULL AS unknown, g.name, g.phone, g.village_code AS sage_village,
           coalesce(g.trained_trainer, false) AS trained_trainer, g.trainer_course_date
    FROM (SELECT s.*, coalesce(s.held_date, s.planned_date) AS on_day,
                 s.held_date IS NOT NULL AND s.held_date <= $today AS held
          FROM sessions s WHERE s.sage_code IS NOT NULL) d
    LEFT JOIN sages_latest g USING (sage_code)
    WHERE d.on_day IS NOT NULL
),
sage_flags AS (
    -- not trained at all, or trained only after a session to come (a sage the registry does
    -- not know is data to fix: R09)
    SELECT * FROM sage_sessions
    WHERE NOT unknown AND (NOT trained_trainer OR (to_come AND trainer_course_date > on_day))
),
to_fix AS (
    -- one entry per quarantined submission; R09 then joins those sharing a code (a
    -- registration and its duplicate) into one alert, so each submission is shown
    SELECT form_id, coalesce(business_key, submission_id) AS subject, submission_id,
           any_value(business_key) AS code, min(subject_name) AS subject_name,
           min(village_code) AS village_code, min(submitted_at) AS submitted_at,
           string_agg(DISTINCT reason_th, '; ' ORDER BY reason_th) AS reasons_th,
           string_agg(DISTINCT reason_en, '; ' ORDER BY reason_en) AS reasons_en
    FROM quarantine_all
    GROUP BY form_id, subject, submission_id
),
-- a session as its latest submission plans it, held if any submission of it says so
session_plans AS (
    SELECT session_code, village_code, activity_type, planned_date,
           bool_or(held_date IS NOT NULL AND held_date <= $today) OVER w AS held
    FROM sessions
    WINDOW w AS (PARTITION BY session_code)
    QUALIFY row_number() OVER (PARTITION BY session_code
                               ORDER BY submitted_at DESC NULLS LAST, submission_key DESC) = 1
),
held_sessions AS (
    SELECT s.session_code, s.village_code, s.activity_type, s.submission_key
    FROM sessions s WHERE s.held_date <= $today
),
-- groups some of whose members went on a study visit (to a successful group elsewhere)
visited_groups AS (
    SELECT DISTINCT m.group_code
    FROM held_sessions h
    JOIN attendance a USING (submission_key)
    JOIN group_members m USING (hh_code)
    WHERE h.activity_type = 'study_visit' AND a.present
),
groups_latest AS (
    SELECT * FROM groups
    QUALIFY row_number() OVER (PARTITION BY group_code ORDER BY submitted_at DESC NULLS LAST) = 1
),
subject_names AS (
    -- who a code names, for a fix whose submission did not say (an income survey)
    SELECT 'hh_code' AS subject_key, hh_code AS code, head_name AS name FROM household_outcomes
    UNION ALL
    SELECT 'sage_code', sage_code, name FROM sages_latest
    UNION ALL
    SELECT 'group_code', group_code, max(group_name) FROM groups GROUP BY group_code
),
fixes AS (
    -- what to fix, in whose words: the form's Thai title, the person or household by name
    SELECT t.form_id, t.subject, any_value(f.subject_key) AS subject_key,
           CASE WHEN any_value(t.code) IS NULL THEN 'submission'
                ELSE any_value(f.subject_type) END AS subject_type,
           any_value(t.code) AS code,
           coalesce(min(t.subject_name), any_value(n.name)) AS name,
           min(t.village_code) AS village_code,
           'แบบ' || coalesce(any_value(f.title_th), t.form_id) || ': '
             || coalesce(coalesce(min(t.subject_name), any_value(n.name)) || ' ('
                         || any_value(t.code) || ')', any_value(t.code), 'ไม่ระบุรหัส')
             || ' — ' || string_agg(
                 concat('ส่งเมื่อ ' || be_date(t.submitted_at::DATE) || ' ', '(รหัสส่ง ',
                        t.submission_id, '): ', t.reasons_th),
                 ' | ' ORDER BY t.submitted_at NULLS LAST, t.submission_id) AS reason_th,
           coalesce(any_value(f.title_en), t.form_id) || ': '
             || coalesce(coalesce(min(t.subject_name), any_value(n.name)) || ' ('
                         || any_value(t.code) || ')', any_value(t.code), 'no code given')
             || ' — ' || string_agg(
                 concat('submitted ' || strftime(t.submitted_at, '%Y-%m-%d') || ' ',
                        '(submission ', t.submission_id, '): ', t.reasons_en),
                 ' | ' ORDER BY t.submitted_at NULLS LAST, t.submission_id) AS reason_en
    FROM to_fix t
    LEFT JOIN forms f USING (form_id)
    LEFT JOIN subject_names n ON n.subject_key = f.subject_key AND n.code = t.code
    GROUP BY t.form_id, t.subject
),
found AS (
    SELECT 'R01_CONTACT_BEFORE_SESSION' AS rule_id, 'household' AS subject_type,
           i.session_code || '/' || i.hh_code AS subject_id, i.hh_code,
           NULL AS subject_name, NULL AS phone, i.village_code,
           CASE WHEN i.planned_date - $today <= $lead_days THEN 1 ELSE 2 END AS priority,
           -- fixed by the plan, not by today: a call not made in time is overdue
           i.planned_date - $lead_days AS rule_due,
           'แจ้งนัด' || activity_th(i.activity_type) || ' ' || i.session_code || ' วันที่ '
             || be_date(i.planned_date) || ' (อีก ' || (i.planned_date - $today) || ' วัน; แจ้งล่วงหน้า'
             || 'อย่างน้อย ' || $lead_days || ' วัน)' AS reason_th,
           'tell the household about ' || coalesce(i.activity_type, 'activity') || ' '
             || i.session_code || ' on ' || i.planned_date || ' (in '
             || (i.planned_date - $today) || ' days; at least ' || $lead_days
             || ' days ahead)' AS reason_en
    FROM invited i

    UNION ALL
    SELECT 'R02_SESSION_IN_FARM_SEASON', 'session', x.session_code, NULL,
           activity_th(x.activity_type) || coalesce(' ' || occupation_th(x.occupation), ''),
           g.phone, x.village_code,
           CASE WHEN x.held THEN 3 ELSE 2 END,
           CASE WHEN NOT x.held THEN x.on_day - $lead_days END,
           CASE WHEN x.held
                THEN 'จัดเมื่อ ' || be_date(x.on_day) || ' ใน' || x.season_th || ' มาร่วม '
                     || coalesce(t.present, 0) || ' จาก ' || coalesce(t.invited, 0)
                     || ' ครัวเรือน: ตรวจสอบผู้ขาดและพิจารณาจัดซ่อม'
                ELSE 'วางแผนจัดวันที่ ' || be_date(x.on_day) || ' ตรงกับ' || x.season_th
                     || ' ชาวบ้านอาจไม่ว่าง: พิจารณาเลื่อนวัน' END,
           CASE WHEN x.held
                THEN 'held on ' || x.on_day || ' in the ' || x.season_en || ' season; '
                     || coalesce(t.present, 0) || ' of ' || coalesce(t.invited, 0)
                     || ' households came: check absentees, consider a make-up session'
                ELSE 'planned on ' || x.on_day || ' in the ' || x.season_en
                     || ' season: consider moving it' END
    FROM in_season x
    LEFT JOIN sages_latest g ON g.sage_code = x.sage_code
    LEFT JOIN turnout t ON t.submission_key = x.submission_key

    UNION ALL
    SELECT 'R03_LOW_ATTENDANCE', 'household', o.hh_code, o.hh_code, NULL, NULL, o.village_code,
           2, NULL,
           CASE WHEN o.absent_last_two THEN 'ขาดการอบรม 2 ครั้งติดต่อกัน; ' ELSE '' END
             || 'เข้าร่วม ' || o.sessions_attended || ' จาก ' || o.sessions_invited || ' ครั้ง ('
             || round(100.0 * o.sessions_attended / o.sessions_invited)::INT || '%)',
           CASE WHEN o.absent_last_two THEN 'absent from the last two sessions; ' ELSE '' END
             || 'attended ' || o.sessions_attended || ' of ' || o.sessions_invited
             || ' sessions (' || round(100.0 * o.sessions_attended / o.sessions_invited)::INT
             || '%)'
    FROM household_outcomes o
    WHERE o.sessions_invited >= 2
      AND (o.sessions_attended < $min_attendance * o.sessions_invited OR o.absent_last_two)

    UNION ALL
    SELECT 'R04_TRAINED_NO_MATERIALS', 'household', o.hh_code, o.hh_code, NULL, NULL,
           o.village_code, 2, NULL,
           'ผ่านการอบรมเมื่อ ' || be_date(o.first_trained)
             || ' แต่ยังไม่ได้รับวัสดุอุปกรณ์ (เกิน ' || $materials_days || ' วัน)',
           'trained on ' || o.first_trained || ' but no materials after '
             || $materials_days || ' days'
    FROM household_outcomes o
    WHERE o.first_trained + $materials_days < $today
      AND NOT EXISTS (SELECT 1 FROM materials m WHERE m.hh_code = o.hh_code)

    UNION ALL
    SELECT 'R05_NO_FOLLOWUP_INCOME', 'household', o.hh_code, o.hh_code, NULL, NULL,
           o.village_code, 3, NULL,
           'ได้รับวัสดุเมื่อ ' || be_date(o.first_handout)
             || ' แต่ยังไม่มีการสำรวจรายได้ติดตามผล (เกิน ' || $followup_days || ' วัน)',
           'materials received on ' || o.first_handout
             || ' but no follow-up income survey after ' || $followup_days || ' days'
    FROM household_outcomes o
    WHERE o.first_handout + $followup_days < $today
      AND NOT EXISTS (
          SELECT 1 FROM income_surveys i
          WHERE i.hh_code = o.hh_code AND i.round = 'followup'
            AND i.survey_date >= o.first_handout)

    UNION ALL
    SELECT 'R06_OUTCOME_BELOW_TARGET', 'household', o.hh_code, o.hh_code, NULL, NULL,
           o.village_code, 2, NULL,
           concat_ws('; ',
               CASE WHEN o.practising = false THEN 'ไม่ได้ประกอบอาชีพที่อบรม (สำรวจเมื่อ '
                    || be_date(o.followup_date) || ')' END,
               CASE WHEN o.income_not_up THEN 'รายได้ครัวเรือน '
                    || format('{:,}', o.baseline_income) || ' → '
                    || format('{:,}', o.followup_income) || ' บาท/เดือน ('
                    || format('{:+.1f}%', 100 * o.income_change) || ') ไม่เพิ่มขึ้น' END,
               CASE WHEN o.followup_problem <> 'none'
                    THEN 'ปัญหาที่พบ: ' || problem_th(o.followup_problem)
                         || coalesce(' — ตกลงว่า: ' || o.followup_action,
                                     ' — ยังไม่ได้ตกลงว่าจะทำอะไร') END),
           concat_ws('; ',
               CASE WHEN o.practising = false THEN 'not practising the occupation (survey '
                    || o.followup_date || ')' END,
               CASE WHEN o.income_not_up THEN 'household income '
                    || format('{:,}', o.baseline_income) || ' → '
                    || format('{:,}', o.followup_income) || ' THB/month ('
                    || format('{:+.1f}%', 100 * o.income_change) || ') not up' END,
               CASE WHEN o.followup_problem <> 'none'
                    THEN 'problem found: ' || o.followup_problem
                         || coalesce(' — agreed: ' || o.followup_action, ' — nothing agreed yet')
               END)
    FROM outcome_checks o
    WHERE o.practising = false OR o.income_not_up

    UNION ALL
    SELECT 'R07_VILLAGE_NO_GROUP', 'village', v.village_code, NULL,
           village_th(v.village_code), NULL, v.village_code, 3, NULL,
           'ครัวเรือนผ่านการอบรม ' || v.n_trained || ' ครัวเรือน ตั้งแต่ '
             || be_date(v.first_trained) || ' แต่ยังไม่มีกลุ่มอาชีพ (เกิน '
             || $group_days || ' วัน)',
           v.n_trained || ' households trained since ' || v.first_trained
             || ' but no occupational group after ' || $group_days || ' days'
    FROM village_training v
    WHERE v.first_trained + $group_days < $today
      AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.village_code = v.village_code)
      AND NOT EXISTS (
          SELECT 1 FROM group_members gm JOIN household_outcomes o USING (hh_code)
          WHERE o.village_code = v.village_code AND o.trained)

    UNION ALL
    SELECT 'R08_SAGE_NOT_TRAINER', 'sage', f.sage_code, NULL,
           any_value(f.name), any_value(f.phone),
           coalesce(any_value(f.sage_village), min(f.village_code)),
           CASE WHEN min(f.on_day) FILTER (WHERE f.to_come) <= $today + $upcoming_days
                THEN 1 ELSE 2 END,
           CASE WHEN bool_or(f.to_come)
                THEN min(f.on_day) FILTER (WHERE f.to_come) - $lead_days END,
           CASE WHEN NOT bool_or(f.trained_trainer) THEN 'ยังไม่ผ่านการอบรมวิทยากร'
                ELSE 'อบรมวิทยากรเมื่อ ' || be_date(any_value(f.trainer_course_date))
                     || ' หลังวันสอน' END
             || CASE WHEN bool_or(f.held) THEN '; สอนไปแล้ว '
                     || count(*) FILTER (WHERE f.held) || ' ครั้ง' ELSE '' END
             || CASE WHEN bool_or(f.to_come) THEN '; กำหนดสอนอีก '
                     || count(*) FILTER (WHERE f.to_come) || ' ครั้ง ครั้งถัดไป '
                     || be_date(min(f.on_day) FILTER (WHERE f.to_come)) ELSE '' END,
           CASE WHEN NOT bool_or(f.trained_trainer) THEN 'not trained as a trainer'
                ELSE 'trainer course on ' || any_value(f.trainer_course_date)
                     || ', after a session' END
             || CASE WHEN bool_or(f.held) THEN '; taught '
                     || count(*) FILTER (WHERE f.held) || ' sessions' ELSE '' END
             || CASE WHEN bool_or(f.to_come) THEN '; ' || count(*) FILTER (WHERE f.to_come)
                     || ' to come, next on ' || min(f.on_day) FILTER (WHERE f.to_come)
                ELSE '' END
    FROM sage_flags f
    GROUP BY f.sage_code

    UNION ALL
    SELECT 'R09_DATA_TO_FIX', x.subject_type, x.form_id || ':' || x.subject,
           CASE WHEN x.subject_key = 'hh_code' THEN x.code END, x.name, NULL, x.village_code,
           1, NULL, x.reason_th, x.reason_en
    FROM fixes x

    UNION ALL
    -- a session names a sage the registry does not know (and whose registration is not
    -- waiting in quarantine either, which says what to fix itself)
    SELECT 'R09_DATA_TO_FIX', 'sage', 'sammachip_sage:' || u.sage_code, NULL, NULL, NULL,
           min(u.village_code), 1,
           min(u.on_day) FILTER (WHERE u.to_come) - $lead_days,
           'แบบ' || any_value(f.title_th) || ': ไม่พบปราชญ์รหัส ' || u.sage_code
             || ' ในทะเบียน แต่เป็นผู้สอนใน' || any_value(s.title_th) || ' '
             || string_agg(u.session_code || ' วันที่ ' || be_date(u.on_day), ', '
                           ORDER BY u.on_day, u.session_code)
             || ': ลงทะเบียนปราชญ์ หรือแก้รหัสปราชญ์ในแบบที่ส่ง',
           any_value(f.title_en) || ': no sage ' || u.sage_code || ' in the registry, yet '
             || 'named as the teacher in ' || any_value(s.title_en) || ' '
             || string_agg(u.session_code || ' on ' || u.on_day, ', '
                           ORDER BY u.on_day, u.session_code)
             || ': register the sage or correct the code on the session form'
    FROM sage_sessions u
    JOIN forms f ON f.form_id = 'sammachip_sage'
    JOIN forms s ON s.form_id = 'sammachip_session'
    WHERE u.unknown AND NOT EXISTS (
        SELECT 1 FROM quarantine_all q
        WHERE q.form_id = 'sammachip_sage' AND q.business_key = u.sage_code)
    GROUP BY u.sage_code

    UNION ALL
    SELECT 'R10_SESSION_NOT_HELD', 'session', p.session_code, NULL,
           activity_th(p.activity_type), NULL, p.village_code, 2,
           p.planned_date + $act_days,
           'วางแผนจัด' || activity_th(p.activity_type) || ' ' || p.session_code || ' วันที่ '
             || be_date(p.planned_date) || ' เลยกำหนดมา ' || ($today - p.planned_date)
             || ' วัน แต่ยังไม่มีบันทึกการจัด: จัดให้ได้หรือกำหนดวันใหม่ในแบบการฝึกอบรม',
           coalesce(p.activity_type, 'activity') || ' ' || p.session_code || ' planned on '
             || p.planned_date || ' is ' || ($today - p.planned_date)
             || ' days past and not recorded as held: hold it or plan a new date'
    FROM session_plans p
    WHERE NOT p.held AND p.planned_date < $today

    UNION ALL
    SELECT 'R11_VILLAGE_NO_KICKOFF', 'village', v.village_code, NULL,
           village_th(v.village_code), NULL, v.village_code, 3, NULL,
           'อบรมครัวเรือนแล้ว ' || v.n_trained || ' ครัวเรือน ตั้งแต่ ' || be_date(v.first_trained)
             || ' แต่ไม่มีบันทึกการประชุมชี้แจงโครงการในหมู่บ้าน',
           v.n_trained || ' households trained since ' || v.first_trained
             || ' but no kickoff meeting recorded in the village'
    FROM village_training v
    WHERE NOT EXISTS (
        SELECT 1 FROM held_sessions h
        WHERE h.village_code = v.village_code AND h.activity_type = 'kickoff')

    UNION ALL
    SELECT 'R12_GROUP_NO_STUDY_VISIT', 'group', g.group_code, NULL, g.group_name, NULL,
           g.village_code, 3, NULL,
           'กลุ่มตั้งเมื่อ ' || be_date(g.formed_date)
             || ' แต่สมาชิกยังไม่ได้ศึกษาดูงานกลุ่มที่ประสบความสำเร็จ (เกิน '
             || $study_visit_days || ' วัน)',
           'group formed on ' || g.formed_date
             || ' but its members have not visited a successful group (after '
             || $study_visit_days || ' days)'
    FROM groups_latest g
    WHERE g.formed_date + $study_visit_days < $today
      -- a visit the members went on, or one organised in the group's village
      AND g.group_code NOT IN (SELECT group_code FROM visited_groups)
      AND NOT EXISTS (
          SELECT 1 FROM held_sessions h
          WHERE h.activity_type = 'study_visit' AND h.village_code = g.village_code)

    UNION ALL
    SELECT 'R13_SAGE_OUTSIDE_EXPERTISE', 'sage', x.sage_code, NULL,
           any_value(x.name), any_value(x.phone),
           coalesce(any_value(x.sage_village), min(x.village_code)),
           CASE WHEN bool_or(x.to_come) THEN 2 ELSE 3 END,
           min(x.on_day) FILTER (WHERE x.to_come) - $lead_days,
           'ความเชี่ยวชาญที่บันทึกไว้: ' || occupation_th(any_value(x.expertise)) || ' แต่สอน '
             || string_agg(occupation_th(x.occupation) || ' (' || x.session_code || ' วันที่ '
                           || be_date(x.on_day) || ')', ', ' ORDER BY x.on_day, x.session_code)
             || ': ตรวจสอบผู้สอน หรือแก้ความเชี่ยวชาญในทะเบียนปราชญ์',
           'recorded expertise: ' || any_value(x.expertise) || ', yet teaches '
             || string_agg(x.occupation || ' (' || x.session_code || ' on ' || x.on_day || ')',
                           ', ' ORDER BY x.on_day, x.session_code)
             || ': check the teacher or correct the expertise in the sage registry'
    FROM sage_sessions x
    WHERE NOT x.unknown AND x.occupation <> x.expertise
      AND (x.to_come OR x.on_day >= $today - $season_recent_days)
    GROUP BY x.sage_code
),
keyed AS (
    SELECT f.rule_id || ':' || f.subject_id AS alert_id, l.rule_th, l.rule_en, f.*
    FROM found f JOIN rule_labels l USING (rule_id)
),
-- One row per alert id. Almost every id is found once: only the repeated ones are sorted
-- (sorting every row on its reasons was a third of this mart's time at province scale).
repeated AS (SELECT alert_id FROM keyed GROUP BY alert_id HAVING count(*) > 1),
deduped AS (
    SELECT * FROM keyed ANTI JOIN repeated USING (alert_id)
    UNION ALL
    -- a full tie-break: which duplicate is kept must not depend on the order rows are read
    SELECT * FROM (SELECT * FROM keyed SEMI JOIN repeated USING (alert_id))
    QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY priority, rule_due,
                               reason_en, reason_th, village_code) = 1
),
current AS (
    SELECT f.alert_id, f.rule_id, f.rule_th, f.rule_en,
           f.priority, f.subject_type, f.subject_id,
           coalesce(f.subject_name, o.head_name) AS subject_name,
           coalesce(f.phone, o.phone) AS phone,
           coalesce(f.village_code, o.village_code) AS village_code,
           f.reason_th, f.reason_en, f.rule_due
    FROM deduped f
    LEFT JOIN household_outcomes o ON o.hh_code = f.hh_code
),
prev AS (
    SELECT * FROM previous_alerts  -- one row per alert id (marts.py sees to it)
),
-- What a snooze names: an alert, or a session's call list by the list's own id (the rule and
-- the session, as the worklist shows it), which holds every household on the list.
snooze_names AS (
    SELECT alert_id, alert_id AS named FROM current
    UNION ALL
    SELECT alert_id, rule_id || ':' || split_part(subject_id, '/', 1) FROM current
    WHERE rule_id = 'R01_CONTACT_BEFORE_SESSION'
),
snoozed AS (
    SELECT n.alert_id, max(s.until) AS until, arg_max(s.note, s.until) AS note
    FROM snooze_names n JOIN snoozes s ON s.alert_id = n.named
    GROUP BY n.alert_id HAVING max(s.until) > $today
),
-- The last follow-up visit that reached the subject and marked this reason resolved.
visit_closes AS (
    SELECT r.alert_id, max(v.visit_date) AS visit_date,
           arg_max(v.submission_key, v.submitted_at) AS closed_by_visit,
           max(v.submitted_at) AS closed_at
    FROM followup_reasons r JOIN followup_visits v USING (submission_key)
    WHERE r.state = 'resolved' AND v.reached AND v.visit_date IS NOT NULL
    GROUP BY r.alert_id
),
firing AS (
    -- a resolved alert that fires again starts afresh, unless a visit had closed it: then it
    -- was never resolved by the data, and keeps its first day
    SELECT c.*, z.until AS snoozed_until, z.note AS snooze_note,
           CASE WHEN p.status IN ('open', 'snoozed') OR p.closed_by_visit IS NOT NULL
                THEN p.first_seen ELSE $today END AS first_seen,
           vc.visit_date, vc.closed_by_visit, vc.closed_at
    FROM current c
    LEFT JOIN prev p USING (alert_id)
    LEFT JOIN snoozed z USING (alert_id)
    LEFT JOIN visit_closes vc USING (alert_id)
),
still_open AS (
    -- a visit that resolved the reason closes it while the data still show it, for
    -- $reopen_days days; then it is open again
    SELECT * EXCLUDE (visit_date, closed_by_visit, closed_at, snoozed_until, snooze_note),
           $today AS last_seen,
           CASE WHEN closing THEN 'resolved' WHEN snoozed_until IS NULL THEN 'open'
                ELSE 'snoozed' END AS status,
           CASE WHEN closing THEN visit_date END AS resolved_on,
           CASE WHEN NOT closing THEN snoozed_until END AS snoozed_until,
           CASE WHEN NOT closing THEN snooze_note END AS snooze_note,
           CASE WHEN closing THEN closed_by_visit END AS closed_by_visit,
           CASE WHEN closing THEN closed_at END AS closed_at
    FROM (SELECT *, coalesce(visit_date >= first_seen AND visit_date + $reopen_days > $today,
                             false) AS closing
          FROM firing)
),
resolved AS (
    SELECT p.alert_id, p.rule_id, p.rule_th, p.rule_en, p.priority, p.subject_type,
           p.subject_id, p.subject_name, p.phone, p.village_code, p.reason_th, p.reason_en,
           p.due_date AS rule_due, p.first_seen, p.last_seen, 'resolved' AS status,
           CASE WHEN p.status = 'resolved' THEN coalesce(p.resolved_on, $today) ELSE $today END
             AS resolved_on,
           NULL::DATE AS snoozed_until, NULL AS snooze_note,
           p.closed_by_visit, p.closed_at  -- a visit closed it before the data did
    FROM prev p ANTI JOIN current c USING (alert_id)
),
lifecycle AS (
    SELECT * FROM still_open
    UNION ALL BY NAME
    SELECT * FROM resolved WHERE resolved_on + $keep_resolved_days >= $today
)
SELECT a.alert_id, a.rule_id, a.rule_th, a.rule_en, a.priority, a.subject_type, a.subject_id,
       a.subject_name, a.phone, a.village_code, left(a.village_code, 6) AS tambon_code,
       coalesce(r.officer_id, $district_id) AS officer_id,
       coalesce(r.officer_name, $district_name) AS officer_name,
       a.reason_th, a.reason_en,
       coalesce(a.rule_due, a.first_seen + $act_days) AS due_date,
       a.first_seen, a.last_seen, a.status, a.resolved_on, a.snoozed_until, a.snooze_note,
       a.closed_by_visit, a.closed_at
FROM lifecycle a
LEFT JOIN roster r ON r.tambon_code = left(a.village_code, 6)
ORDER BY officer_id, CASE a.status WHEN 'open' THEN 0 WHEN 'snoozed' THEN 1 ELSE 2 END,
         a.priority, due_date, tambon_code, a.village_code, a.rule_id, a.subject_id
