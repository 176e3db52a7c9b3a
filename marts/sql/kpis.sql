-- The programme's KPIs against the department's targets, for the whole district, each
-- officer's area and each tambon:
--   K1 trained households practising the occupation (of those followed up)   target $target_practising
--   K2 change of the average household income, baseline → follow-up,
--      of the practising households                                          target $target_income
--   K3 target villages with at least one occupational group                 target $target_groups
WITH hh AS (
    SELECT o.*, coalesce(r.officer_id, $district_id) AS officer_id,
           coalesce(r.officer_name, $district_name) AS officer_name
    FROM household_outcomes o LEFT JOIN roster r ON r.tambon_code = o.tambon_code
),
villages AS (
    SELECT v.*,
           (SELECT count(DISTINCT g.group_code) FROM groups g
             WHERE g.village_code = v.village_code) AS n_groups
    FROM (SELECT DISTINCT village_code, tambon_code, officer_id, officer_name FROM hh) v
),
hh_agg AS (
    SELECT CASE WHEN grouping(officer_id) = 0 THEN 'officer'
                WHEN grouping(tambon_code) = 0 THEN 'tambon' ELSE 'district' END AS scope,
           officer_id, any_value(officer_name) AS officer_name, tambon_code,
           count(*) FILTER (WHERE trained) AS n_trained,
           count(*) FILTER (WHERE trained AND practising IS NOT NULL) AS n_followed,
           count(*) FILTER (WHERE trained AND practising) AS n_practising,
           count(*) FILTER (WHERE practising AND baseline_income > 0
                            AND followup_income IS NOT NULL) AS n_income,
           avg(baseline_income) FILTER (WHERE practising AND baseline_income > 0
                                        AND followup_income IS NOT NULL) AS avg_baseline,
           avg(followup_income) FILTER (WHERE practising AND baseline_income > 0
                                        AND followup_income IS NOT NULL) AS avg_followup
    FROM hh
    GROUP BY GROUPING SETS ((), (officer_id), (tambon_code))
),
village_agg AS (
    SELECT CASE WHEN grouping(officer_id) = 0 THEN 'officer'
                WHEN grouping(tambon_code) = 0 THEN 'tambon' ELSE 'district' END AS scope,
           officer_id, tambon_code,
           count(*) AS n_villages,
           count(*) FILTER (WHERE n_groups > 0) AS n_with_group,
           coalesce(sum(n_groups), 0) AS n_groups
    FROM villages
    GROUP BY GROUPING SETS ((), (officer_id), (tambon_code))
),
joined AS (
    SELECT h.*, v.n_villages, v.n_with_group, v.n_groups,
           CASE h.scope WHEN 'officer' THEN h.officer_id
                        WHEN 'tambon' THEN h.tambon_code ELSE $district_id END AS scope_code,
           CASE h.scope WHEN 'officer' THEN h.officer_name
                        WHEN 'tambon' THEN tambon_th(h.tambon_code)
                        ELSE $district_name END AS scope_name
    FROM hh_agg h JOIN village_agg v
      ON v.scope = h.scope
     AND v.officer_id IS NOT DISTINCT FROM h.officer_id
     AND v.tambon_code IS NOT DISTINCT FROM h.tambon_code
),
kpis AS (
    SELECT scope, scope_code, scope_name, 'K1_PRACTISING' AS kpi_id,
           'ครัวเรือนที่ผ่านการอบรมนำไปประกอบอาชีพ' AS kpi_th,
           'Trained households practising' AS kpi_en,
           CASE WHEN n_followed > 0 THEN n_practising / n_followed END AS value,
           $target_practising AS target, n_followed AS n,
           'ประกอบอาชีพ ' || n_practising || ' จาก ' || n_followed
             || ' ครัวเรือนที่ติดตามแล้ว (ผ่านการอบรม ' || n_trained || ' ครัวเรือน)' AS detail_th,
           n_practising || ' of ' || n_followed || ' followed-up households practising ('
             || n_trained || ' trained)' AS detail_en
    FROM joined
    UNION ALL
    SELECT scope, scope_code, scope_name, 'K2_INCOME_CHANGE',
           'รายได้เฉลี่ยครัวเรือนที่ประกอบอาชีพเพิ่มขึ้น', 'Average income change (practising)',
           CASE WHEN avg_baseline > 0 THEN avg_followup / avg_baseline - 1 END,
           $target_income, n_income,
           CASE WHEN n_income > 0
                THEN 'รายได้เฉลี่ย ' || format('{:,}', round(avg_baseline)::BIGINT) || ' → '
                     || format('{:,}', round(avg_followup)::BIGINT) || ' บาท/เดือน ('
                     || n_income || ' ครัวเรือน)'
                ELSE 'ยังไม่มีครัวเรือนที่ติดตามรายได้' END,
           CASE WHEN n_income > 0
                THEN 'average income ' || format('{:,}', round(avg_baseline)::BIGINT) || ' → '
                     || format('{:,}', round(avg_followup)::BIGINT) || ' THB/month ('
                     || n_income || ' households)'
                ELSE 'no household followed up yet' END
    FROM joined
    UNION ALL
    SELECT scope, scope_code, scope_name, 'K3_GROUP_VILLAGES',
           'หมู่บ้านที่มีกลุ่มอาชีพ', 'Villages with an occupational group',
           CASE WHEN n_villages > 0 THEN n_with_group / n_villages END,
           $target_groups, n_villages,
           'มีกลุ่ม ' || n_with_group || ' จาก ' || n_villages || ' หมู่บ้าน ('
             || n_groups || ' กลุ่ม, เฉลี่ย '
             || format('{:.2f}', coalesce(n_groups / nullif(n_villages, 0), 0))
             || ' กลุ่มต่อหมู่บ้าน)',
           n_with_group || ' of ' || n_villages || ' villages (' || n_groups || ' groups, '
             || format('{:.2f}', coalesce(n_groups / nullif(n_villages, 0), 0))
             || ' per village)'
    FROM joined
)
SELECT scope, scope_code, scope_name, kpi_id, kpi_th, kpi_en, value, target,
       value >= target AS met, n, detail_th, detail_en, $today AS as_of
FROM kpis
ORDER BY CASE scope WHEN 'district' THEN 0 WHEN 'officer' THEN 1 ELSE 2 END,
         scope_code, kpi_id
