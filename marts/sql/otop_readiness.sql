-- OTOP-readiness checklist per occupational group.
-- Items are listed in the order an officer should help with them: who may register at all
-- (members, nationality, community link, product type), then the standard (the longest to
-- obtain: start early), then packaging and label, then records.
-- Groups are ordered by what to do first: ready but not yet applied (a quick win), nearly
-- ready, not ready; groups already applied or registered come last.
WITH latest_groups AS (
    SELECT * FROM groups
    QUALIFY row_number() OVER (PARTITION BY group_code ORDER BY submitted_at DESC NULLS LAST) = 1
),
members AS (
    SELECT gm.submission_key, gm.hh_code, h.national_id, h.village_code
    FROM group_members gm
    LEFT JOIN (SELECT * FROM households
               QUALIFY row_number() OVER (PARTITION BY hh_code
                                          ORDER BY submitted_at DESC NULLS LAST) = 1) h
      USING (hh_code)
),
per_group AS (
    SELECT g.*,
           (SELECT count(*) FROM members m WHERE m.submission_key = g.submission_key)
             AS member_rows,
           -- Thai nationals have an ID starting 1-5; no ID on record cannot be shown to be Thai
           (SELECT count(*) FROM members m WHERE m.submission_key = g.submission_key
              AND (m.national_id IS NULL OR left(m.national_id, 1) NOT IN ('1','2','3','4','5'))
           ) AS non_thai_or_unknown,
           (SELECT count(*) FROM members m WHERE m.submission_key = g.submission_key
              AND left(coalesce(m.village_code, ''), 4) <> left(g.village_code, 4)
           ) AS non_local
    FROM latest_groups g
),
checks AS (
    SELECT *,
        coalesce(greatest(n_members, member_rows), 0) AS members_counted,
        coalesce(greatest(n_members, member_rows), 0) >= $min_members AS members_ok,
        member_rows > 0 AND non_thai_or_unknown = 0 AS thai_members_ok,
        -- the community takes part through local raw materials or local members (labour)
        coalesce(local_materials, false) OR (member_rows > 0 AND non_local = 0)
          AS community_link_ok,
        coalesce(product_type IN ('food', 'beverage', 'textile', 'decor', 'herbal'), false)
          AS product_type_ok,
        coalesce(CASE WHEN product_type IN ('food', 'beverage')
                      THEN list_contains(standards, 'fda')
                      ELSE list_contains(standards, 'tcps') OR list_contains(standards, 'tis')
                 END, false) AS standard_ok,
        coalesce(packaging, false) AND coalesce(label, false) AS packaging_label_ok,
        coalesce(months_recorded, 0) >= $min_months AND coalesce(monthly_sales, 0) > 0
          AS steady_records_ok
    FROM per_group
),
scored AS (
    SELECT *,
        members_ok::INT + thai_members_ok::INT + community_link_ok::INT + product_type_ok::INT
          + standard_ok::INT + packaging_label_ok::INT + steady_records_ok::INT AS score,
        7 AS max_score,
        list_filter([
            CASE WHEN NOT members_ok THEN 'สมาชิกไม่ถึง ' || $min_members || ' คน (มี '
                 || members_counted || ' คน)' END,
            CASE WHEN NOT thai_members_ok THEN CASE WHEN member_rows = 0
                 THEN 'ยังไม่มีรายชื่อสมาชิกเพื่อตรวจสัญชาติ'
                 ELSE 'สมาชิก ' || non_thai_or_unknown
                      || ' คนไม่ใช่สัญชาติไทยหรือไม่มีเลขบัตรในทะเบียน' END END,
            CASE WHEN NOT community_link_ok
                 THEN 'ยังไม่เชื่อมโยงชุมชน (ใช้วัตถุดิบหรือแรงงานในท้องถิ่น)' END,
            CASE WHEN NOT product_type_ok THEN 'ประเภทผลิตภัณฑ์ไม่ตรง 5 ประเภท OTOP' END,
            CASE WHEN NOT standard_ok THEN CASE WHEN product_type IN ('food', 'beverage')
                 THEN 'ยังไม่มีมาตรฐาน อย.' ELSE 'ยังไม่มีมาตรฐาน มผช. หรือ มอก.' END END,
            CASE WHEN NOT packaging_label_ok THEN 'ยังไม่มีบรรจุภัณฑ์และฉลาก' END,
            CASE WHEN NOT steady_records_ok THEN 'ยังไม่มีบันทึกการผลิตและยอดขายต่อเนื่อง ('
                 || $min_months || ' เดือนขึ้นไป)' END
        ], lambda x: x IS NOT NULL) AS missing_th_list,
        list_filter([
            CASE WHEN NOT members_ok THEN 'fewer than ' || $min_members || ' members ('
                 || members_counted || ')' END,
            CASE WHEN NOT thai_members_ok THEN CASE WHEN member_rows = 0
                 THEN 'no member list to check nationality'
                 ELSE non_thai_or_unknown || ' members not Thai nationals (or ID unknown)' END END,
            CASE WHEN NOT community_link_ok
                 THEN 'no community link (local materials or local members)' END,
            CASE WHEN NOT product_type_ok THEN 'product type not one of the five OTOP types' END,
            CASE WHEN NOT standard_ok THEN CASE WHEN product_type IN ('food', 'beverage')
                 THEN 'no FDA (อย.) standard' ELSE 'no TCPS (มผช.) or TIS (มอก.) standard' END END,
            CASE WHEN NOT packaging_label_ok THEN 'no packaging and label' END,
            CASE WHEN NOT steady_records_ok THEN 'no steady production and sales records ('
                 || $min_months || '+ months)' END
        ], lambda x: x IS NOT NULL) AS missing_en_list
    FROM checks
),
judged AS (
    SELECT *,
        CASE WHEN score = max_score THEN 'ready'
             WHEN max_score - score <= $nearly_missing THEN 'nearly_ready'
             ELSE 'not_ready' END AS status,
        coalesce(otop_status, 'not_registered') AS registration
    FROM scored
)
SELECT j.group_code, j.group_name, j.village_code, left(j.village_code, 6) AS tambon_code,
       coalesce(r.officer_id, $district_id) AS officer_id,
       coalesce(r.officer_name, $district_name) AS officer_name,
       j.product_name, j.product_type, otop_type_th(j.product_type) AS product_type_th,
       j.members_counted AS n_members,
       j.members_ok, j.thai_members_ok, j.community_link_ok, j.product_type_ok, j.standard_ok,
       j.packaging_label_ok, j.steady_records_ok, j.score, j.max_score,
       j.status, readiness_th(j.status) AS status_th,
       array_to_string(j.missing_th_list, '; ') AS missing_th,
       array_to_string(j.missing_en_list, '; ') AS missing_en,
       CASE WHEN j.status = 'ready' AND j.registration = 'registered'
                THEN 'ขึ้นทะเบียนแล้ว: เตรียมคัดสรรดาว OPC'
            WHEN j.status = 'ready' AND j.registration = 'applied'
                THEN 'ติดตามผลการยื่นขึ้นทะเบียน'
            WHEN j.status = 'ready' THEN 'ยื่นขึ้นทะเบียน OTOP ที่ สนง.พัฒนาชุมชนอำเภอ'
            ELSE j.missing_th_list[1] END AS next_step_th,
       CASE WHEN j.status = 'ready' AND j.registration = 'registered'
                THEN 'registered: prepare for the OPC star rating'
            WHEN j.status = 'ready' AND j.registration = 'applied'
                THEN 'follow up the application'
            WHEN j.status = 'ready' THEN 'apply for OTOP at the district CDD office'
            ELSE j.missing_en_list[1] END AS next_step_en,
       j.otop_status, otop_status_th(j.registration) AS otop_status_th,
       CASE WHEN j.registration IN ('applied', 'registered') THEN 4
            WHEN j.status = 'ready' THEN 1
            WHEN j.status = 'nearly_ready' THEN 2 ELSE 3 END AS action_order,
       -- the market link: where the group sells, to whom, price and cost per unit
       j.market_channel, channel_th(j.market_channel) AS market_channel_th, j.buyer,
       j.sale_unit, j.price_per_unit, j.cost_per_unit,
       j.price_per_unit - j.cost_per_unit AS margin_per_unit,
       CASE WHEN j.market_channel IS NULL THEN 'ยังไม่มีข้อมูลตลาด'
            WHEN j.market_channel = 'none' THEN 'ยังไม่มีช่องทางขาย'
            ELSE concat_ws(' ', 'ขายผ่าน' || channel_th(j.market_channel)
                                || coalesce(' (' || j.buyer || ')', ''),
                           'ราคา ' || format('{:,.2f}', j.price_per_unit) || ' บาท'
                             || coalesce('/' || j.sale_unit, ''),
                           'ต้นทุน ' || format('{:,.2f}', j.cost_per_unit) || ' บาท',
                           'กำไร ' || format('{:,.2f}', j.price_per_unit - j.cost_per_unit)
                             || ' บาท' || coalesce('/' || j.sale_unit, ''))
       END AS market_th
FROM judged j LEFT JOIN roster r ON r.tambon_code = left(j.village_code, 6)
ORDER BY officer_id, action_order, j.score DESC, j.group_code
