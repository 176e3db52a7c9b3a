-- Each officer's worklist as of $today: one entry per subject (a household, a group, a sage,
-- a session's call list; a village, or a submission nobody can be named for) with all its open
-- alerts under it. At most $per_day entries per officer form "today": overdue first (most
-- overdue first), then priority, then due date, so new entries never bury overdue ones;
-- "today" is then ordered for visiting (tambon, หมู่, house number), "later" keeps the ranking.
WITH registered AS (  -- the latest registration of each household
    SELECT hh_code, village_code, village_name, house_no, head_name, phone, lat, lon
    FROM household_outcomes
),
sages_latest AS (
    SELECT sage_code, name, phone, village_code FROM sages
    QUALIFY row_number() OVER (PARTITION BY sage_code ORDER BY submitted_at DESC NULLS LAST) = 1
),
sessions_latest AS (
    SELECT session_code, village_code, activity_type, planned_date FROM sessions
    QUALIFY row_number() OVER (PARTITION BY session_code ORDER BY submitted_at DESC NULLS LAST) = 1
),
-- a household whose registration waits in quarantine: where it said it lives
held_back AS (
    SELECT business_key AS hh_code, village_code, subject_name AS head_name,
           subject_house_no AS house_no, subject_phone AS phone
    FROM quarantine_all
    WHERE form_id = 'sammachip_household' AND business_key IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY business_key
                               ORDER BY submitted_at DESC NULLS LAST, submission_key) = 1
),
-- how the village calls itself, as the households registered in it wrote it
village_names AS (
    SELECT village_code, mode(village_name) AS village_name
    FROM registered WHERE village_name IS NOT NULL GROUP BY village_code
),
groups_latest AS (
    SELECT group_code, group_name, village_code FROM groups
    QUALIFY row_number() OVER (PARTITION BY group_code ORDER BY submitted_at DESC NULLS LAST) = 1
),
open_alerts AS (
    -- a data fix (R09) about a household, sage, session or group is filed under it: its
    -- subject id is <form id>:<code>
    SELECT a.*,
           CASE WHEN a.rule_id = 'R01_CONTACT_BEFORE_SESSION' THEN 'session'
                ELSE a.subject_type END AS entry_type,
           CASE WHEN a.rule_id = 'R01_CONTACT_BEFORE_SESSION'
                THEN split_part(a.subject_id, '/', 1)
                WHEN a.rule_id = 'R09_DATA_TO_FIX' AND a.subject_type <> 'submission'
                THEN substr(a.subject_id, strpos(a.subject_id, ':') + 1)
                ELSE a.subject_id END AS entry_id,
           CASE WHEN a.rule_id = 'R01_CONTACT_BEFORE_SESSION'
                THEN split_part(a.subject_id, '/', 2) END AS call_hh
    FROM alerts a
    WHERE a.status = 'open'
),
-- A session's contact alerts (one per invited household) are one reason: its call list.
calls AS (
    SELECT o.entry_id AS session_code, o.officer_id,
           count(*) AS n_calls, min(o.due_date) AS due_date, min(o.priority) AS priority,
           min(o.first_seen) AS first_seen,
           list({'hh_code': o.call_hh, 'head_name': coalesce(r.head_name, o.subject_name),
                 'phone': coalesce(r.phone, o.phone), 'house_no': r.house_no,
                 'village_name': coalesce(vn.village_name, 'หมู่ ' || right(o.village_code, 2)::INT),
                 'moo': TRY_CAST(right(coalesce(r.village_code, o.village_code), 2) AS INTEGER),
                 'alert_id': o.alert_id}
                ORDER BY coalesce(r.village_code, o.village_code),
                         house_number(r.house_no) NULLS LAST, r.house_no, o.call_hh)
             AS call_list
    FROM open_alerts o
    LEFT JOIN registered r ON r.hh_code = o.call_hh
    LEFT JOIN village_names vn ON vn.village_code = coalesce(r.village_code, o.village_code)
    WHERE o.rule_id = 'R01_CONTACT_BEFORE_SESSION'
    GROUP BY o.entry_id, o.officer_id
),
reasons AS (
    SELECT officer_id, officer_name, entry_type, entry_id,
           alert_id, rule_id, rule_th, rule_en, priority, due_date,
           reason_th AS detail_th, reason_en AS detail_en, first_seen,
           subject_name, phone, village_code
    FROM open_alerts WHERE rule_id <> 'R01_CONTACT_BEFORE_SESSION'
    UNION ALL
    SELECT c.officer_id, any_value(o.officer_name), 'session', c.session_code,
           'R01_CONTACT_BEFORE_SESSION:' || c.session_code, 'R01_CONTACT_BEFORE_SESSION',
           any_value(o.rule_th), any_value(o.rule_en), c.priority, c.due_date,
           'โทรแจ้ง ' || c.n_calls || ' ครัวเรือนก่อนวันที่ ' || be_date(c.due_date)
             || coalesce(': ' || activity_th(any_value(s.activity_type)) || ' ' || c.session_code
                         || ' วันที่ ' || be_date(any_value(s.planned_date)), ''),
           'call ' || c.n_calls || ' households before ' || c.due_date
             || coalesce(': ' || coalesce(any_value(s.activity_type), 'activity') || ' '
                         || c.session_code || ' on ' || any_value(s.planned_date), ''),
           c.first_seen, NULL, NULL, any_value(o.village_code)
    FROM calls c
    JOIN open_alerts o ON o.rule_id = 'R01_CONTACT_BEFORE_SESSION'
                      AND o.entry_id = c.session_code AND o.officer_id = c.officer_id
    LEFT JOIN sessions_latest s ON s.session_code = c.session_code
    GROUP BY c.officer_id, c.session_code, c.priority, c.due_date, c.n_calls, c.first_seen
),
entries AS (
    SELECT officer_id, any_value(officer_name) AS officer_name, entry_type, entry_id,
           min(priority) AS priority, min(due_date) AS due_date, min(first_seen) AS first_seen,
           any_value(subject_name) AS subject_name, any_value(phone) AS phone,
           min(village_code) AS alert_village,
           -- sorted on keys that are never null: the same order as ORDER BY in the
           -- aggregate, which sorts each group apart (most of this mart's time at province)
           [x.reason FOR x IN list_sort(list({
                'priority': priority, 'due_date': due_date, 'rule_id': rule_id,
                'alert_id': alert_id,
                'reason': {'alert_id': alert_id, 'rule_id': rule_id, 'rule_th': rule_th,
                           'rule_en': rule_en, 'priority': priority, 'due_date': due_date,
                           'detail_th': detail_th, 'detail_en': detail_en,
                           'first_seen': first_seen}}))] AS reasons
    FROM reasons
    GROUP BY officer_id, entry_type, entry_id
),
placed AS (
    SELECT e.*, c.call_list, c.n_calls, coalesce(r.house_no, q.house_no) AS house_no,
           r.lat, r.lon,
           coalesce(r.village_code, q.village_code, g.village_code, s.village_code,
                    gr.village_code, e.alert_village) AS village_code,
           CASE e.entry_type
                WHEN 'household' THEN coalesce(r.head_name, e.subject_name, q.head_name)
                WHEN 'sage' THEN coalesce(g.name, e.subject_name)
                WHEN 'group' THEN gr.group_name
                WHEN 'village' THEN village_th(e.entry_id)
           END AS name,
           CASE e.entry_type
                WHEN 'household' THEN coalesce(r.phone, e.phone, q.phone)
                WHEN 'sage' THEN coalesce(g.phone, e.phone)
           END AS phone_no,
           s.activity_type, s.planned_date
    FROM entries e
    LEFT JOIN registered r ON e.entry_type = 'household' AND r.hh_code = e.entry_id
    LEFT JOIN held_back q ON e.entry_type = 'household' AND q.hh_code = e.entry_id
    LEFT JOIN sages_latest g ON e.entry_type = 'sage' AND g.sage_code = e.entry_id
    LEFT JOIN sessions_latest s ON e.entry_type = 'session' AND s.session_code = e.entry_id
    LEFT JOIN groups_latest gr ON e.entry_type = 'group' AND gr.group_code = e.entry_id
    LEFT JOIN calls c ON e.entry_type = 'session' AND c.session_code = e.entry_id
                     AND c.officer_id = e.officer_id
),
titled AS (
    SELECT p.*,
           CASE WHEN p.entry_type = 'session' AND p.n_calls IS NOT NULL
                THEN 'โทรแจ้ง ' || p.n_calls || ' ครัวเรือนก่อนวันที่ '
                     || be_date(list_min([x.due_date FOR x IN p.reasons
                                          IF x.rule_id = 'R01_CONTACT_BEFORE_SESSION']))
                WHEN p.entry_type = 'session'
                THEN activity_th(p.activity_type) || ' ' || p.entry_id
                     || coalesce(' วันที่ ' || be_date(p.planned_date), '')
                WHEN p.entry_type = 'submission'
                THEN 'แบบ' || coalesce(f.title_th, split_part(p.entry_id, ':', 1))
                     || ' รหัสส่ง ' || substr(p.entry_id, strpos(p.entry_id, ':') + 1)
                ELSE coalesce(p.name, CASE p.entry_type WHEN 'household' THEN 'ครัวเรือน '
                                                        WHEN 'sage' THEN 'ปราชญ์ '
                                                        WHEN 'group' THEN 'กลุ่ม '
                                                        ELSE '' END || p.entry_id)
           END AS title_th,
           CASE WHEN p.entry_type = 'session' AND p.n_calls IS NOT NULL
                THEN 'call ' || p.n_calls || ' households before '
                     || list_min([x.due_date FOR x IN p.reasons
                                  IF x.rule_id = 'R01_CONTACT_BEFORE_SESSION'])
                WHEN p.entry_type = 'session'
                THEN coalesce(p.activity_type, 'activity') || ' ' || p.entry_id
                     || coalesce(' on ' || p.planned_date, '')
                WHEN p.entry_type = 'submission'
                THEN coalesce(f.title_en, split_part(p.entry_id, ':', 1)) || ' submission '
                     || substr(p.entry_id, strpos(p.entry_id, ':') + 1)
                ELSE coalesce(p.name || ' (' || p.entry_id || ')',
                              p.entry_type || ' ' || p.entry_id)
           END AS title_en,
           greatest(0, $today - p.due_date)::INTEGER AS overdue_days
    FROM placed p
    LEFT JOIN forms f ON p.entry_type = 'submission'
                     AND f.form_id = split_part(p.entry_id, ':', 1)
),
ranked AS (
    SELECT t.*,
           row_number() OVER (PARTITION BY t.officer_id
               ORDER BY t.overdue_days DESC, t.priority, t.due_date NULLS LAST, t.first_seen,
                        t.entry_type, t.entry_id) AS rank
    FROM titled t
),
bucketed AS (
    SELECT r.*, CASE WHEN r.rank <= $per_day THEN 'today' ELSE 'later' END AS bucket,
           TRY_CAST(right(r.village_code, 2) AS INTEGER) AS moo
    FROM ranked r
),
-- the visiting order, for the few entries of today only (house numbers are parsed here)
route AS (
    SELECT officer_id, entry_type, entry_id,
           row_number() OVER (PARTITION BY officer_id
               ORDER BY left(village_code, 6) NULLS LAST, moo NULLS LAST,
                        house_number(house_no) NULLS LAST, house_no NULLS LAST, rank) AS stop
    FROM bucketed WHERE bucket = 'today'
)
SELECT b.officer_id, b.officer_name,
       b.entry_type || ':' || b.entry_id AS item_id,
       b.entry_type AS subject_type, b.entry_id AS subject_id,
       b.title_th, b.title_en,
       b.village_code,
       coalesce(vn.village_name, 'หมู่ ' || b.moo) AS village_name,
       b.moo,
       left(b.village_code, 6) AS tambon_code,
       tambon_th(left(b.village_code, 6)) AS tambon_name,
       b.house_no, b.phone_no AS phone, b.lat, b.lon,
       CASE WHEN b.lat IS NOT NULL AND b.lon IS NOT NULL
            THEN 'geo:' || format('{:.6f}', b.lat) || ',' || format('{:.6f}', b.lon) || '?q='
                 || format('{:.6f}', b.lat) || ',' || format('{:.6f}', b.lon)
                 || '(' || url_encode(b.title_th) || ')' END AS geo_uri,
       b.priority, b.due_date, b.overdue_days, b.bucket,
       coalesce(v.stop, b.rank - $per_day) AS visit_order,
       b.reasons,
       coalesce(b.call_list, []) AS call_list,
       b.first_seen
FROM bucketed b
LEFT JOIN route v USING (officer_id, entry_type, entry_id)
LEFT JOIN village_names vn ON vn.village_code = b.village_code
ORDER BY b.officer_id, b.bucket DESC, visit_order
