-- The programme's KPIs against the department's targets ($kpi_source_en), for the whole
-- district, each officer's area and each tambon; every row carries its numerator and
-- denominator, and none flatters:
--   K1  trained households practising the occupation, of ALL trained households (one not
--       followed up yet counts as not known to practise)                      target $target_practising
--   K1B follow-up coverage: trained households with a follow-up survey      (no target)
--   K2  change of the average household income, baseline → follow-up, of EVERY household
--       with both, practising or not                                          target $target_income
--   K3  occupational groups formed, against 10% of the target villages      target $target_groups
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
           count(*) FILTER (WHERE baseline_income > 0
                            AND followup_income IS NOT NULL) AS n_income,
           sum(baseline_income) FILTER (WHERE baseline_income > 0
                                        AND followup_income IS NOT NULL) AS sum_baseline,
           sum(followup_income) FILTER (WHERE baseline_income > 0
                                        AND followup_income IS NOT NULL) AS sum_followup
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
           n_practising AS numerator, n_trained AS denominator,
           $target_practising AS target, n_trained AS n,
           'ประกอบอาชีพ ' || n_practising || ' จาก ' || n_trained
             || ' ครัวเรือนที่ผ่านการอบรม (ติดตามแล้ว ' || n_followed || ' ครัวเรือน)' AS detail_th,
           n_practising || ' of ' || n_trained || ' trained households practising ('
             || n_followed || ' followed up)' AS detail_en
    FROM joined
    UNION ALL
    SELECT scope, scope_code, scope_name, 'K1B_FOLLOWED_UP',
           'ครัวเรือนที่ผ่านการอบรมได้รับการติดตามผล', 'Trained households followed up',
           n_followed, n_trained, NULL, n_trained,
           'ติดตามแล้ว ' || n_followed || ' จาก ' || n_trained || ' ครัวเรือนที่ผ่านการอบรม',
           'followed up ' || n_followed || ' of ' || n_trained || ' trained households'
    FROM joined
    UNION ALL
    SELECT scope, scope_code, scope_name, 'K2_INCOME_CHANGE',
           'รายได้เฉลี่ยครัวเรือนเพิ่มขึ้น (ทุกครัวเรือนที่มีรายได้ก่อนอบรมและติดตามผล)',
           'Average household income change (every household with a baseline and a follow-up)',
           -- average follow-up / average baseline − 1 = (Σ follow-up − Σ baseline) / Σ baseline
           sum_followup - sum_baseline, sum_baseline,
           $target_income, n_income,
           CASE WHEN n_income > 0
                THEN 'รายได้เฉลี่ย ' || format('{:,}', round(sum_baseline / n_income)::BIGINT)
                     || ' → ' || format('{:,}', round(sum_followup / n_income)::BIGINT)
                     || ' บาท/เดือน (' || n_income || ' ครัวเรือน ทั้งที่ประกอบอาชีพและไม่ได้ประกอบอาชีพ)'
                ELSE 'ยังไม่มีครัวเรือนที่ติดตามรายได้' END,
           CASE WHEN n_income > 0
                THEN 'average income ' || format('{:,}', round(sum_baseline / n_income)::BIGINT)
                     || ' → ' || format('{:,}', round(sum_followup / n_income)::BIGINT)
                     || ' THB/month (' || n_income || ' households, practising or not)'
                ELSE 'no household followed up yet' END
    FROM joined
    UNION ALL
    SELECT scope, scope_code, scope_name, 'K3_GROUP_VILLAGES',
           'กลุ่มอาชีพที่จัดตั้ง เทียบกับร้อยละ 10 ของหมู่บ้านเป้าหมาย',
           'Occupational groups formed, against 10% of the target villages',
           n_groups, n_villages, $target_groups, n_villages,
           'จัดตั้ง ' || n_groups || ' กลุ่ม ใน ' || n_villages || ' หมู่บ้านเป้าหมาย (เป้าหมาย '
             || ceil($target_groups * n_villages)::BIGINT || ' กลุ่ม; มีกลุ่ม ' || n_with_group
             || ' หมู่บ้าน)',
           n_groups || ' groups in ' || n_villages || ' target villages (target '
             || ceil($target_groups * n_villages)::BIGINT || ' groups; ' || n_with_group
             || ' villages have one)'
    FROM joined
)
SELECT scope, scope_code, scope_name, kpi_id, kpi_th, kpi_en,
       CASE WHEN denominator > 0 THEN numerator / denominator END AS value,
       target, CASE WHEN denominator > 0 THEN numerator / denominator >= target END AS met,
       n, numerator, denominator, detail_th, detail_en,
       CASE WHEN target IS NOT NULL THEN $kpi_source_th END AS source_th,
       CASE WHEN target IS NOT NULL THEN $kpi_source_en END AS source_en,
       $today AS as_of
FROM kpis
ORDER BY CASE scope WHEN 'district' THEN 0 WHEN 'officer' THEN 1 ELSE 2 END,
         scope_code, kpi_id
