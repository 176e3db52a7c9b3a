-- OTOP-readiness checklist per occupational group. Items are ordered by what an officer
-- should help with first: group basics, then product and standard, then records.
WITH members AS (
    SELECT gm.submission_key, gm.hh_code, h.national_id, h.village_code
    FROM group_members gm LEFT JOIN households h ON h.hh_code = gm.hh_code
),
per_group AS (
    SELECT g.*,
           (SELECT count(*) FROM members m WHERE m.submission_key = g.submission_key
              AND (m.national_id IS NULL OR left(m.national_id, 1) NOT IN ('1','2','3','4','5'))
           ) AS non_thai_or_unknown,
           (SELECT count(*) FROM members m WHERE m.submission_key = g.submission_key
              AND left(coalesce(m.village_code, ''), 4) <> left(g.village_code, 4)
           ) AS non_local
    FROM groups g
),
checks AS (
    SELECT *,
        n_members >= 7 AS members_ok,
        non_thai_or_unknown = 0 AS thai_members_ok,
        coalesce(local_materials, false) AND non_local = 0 AS community_link_ok,
        product_type IN ('food', 'beverage', 'textile', 'decor', 'herbal') AS product_type_ok,
        CASE WHEN product_type IN ('food', 'beverage') THEN list_contains(standards, 'fda')
             ELSE list_contains(standards, 'tcps') OR list_contains(standards, 'tis') END
          AS standard_ok,
        coalesce(packaging, false) AND coalesce(label, false) AS packaging_label_ok,
        coalesce(months_recorded, 0) >= 3 AND coalesce(monthly_sales, 0) > 0 AS steady_records_ok
    FROM per_group
),
scored AS (
    SELECT *,
        members_ok::INT + thai_members_ok::INT + community_link_ok::INT + product_type_ok::INT
          + standard_ok::INT + packaging_label_ok::INT + steady_records_ok::INT AS score,
        7 AS max_score,
        list_filter([
            CASE WHEN NOT members_ok THEN 'สมาชิกไม่ถึง 7 คน' END,
            CASE WHEN NOT thai_members_ok THEN 'สมาชิกบางคนไม่ใช่สัญชาติไทยหรือไม่มีเลขบัตรในทะเบียน' END,
            CASE WHEN NOT community_link_ok THEN 'ยังไม่เชื่อมโยงชุมชน (สมาชิก/วัตถุดิบในท้องถิ่น)' END,
            CASE WHEN NOT product_type_ok THEN 'ประเภทผลิตภัณฑ์ไม่ตรง 5 ประเภท OTOP' END,
            CASE WHEN NOT standard_ok THEN CASE WHEN product_type IN ('food', 'beverage')
                 THEN 'ยังไม่มีมาตรฐาน อย.' ELSE 'ยังไม่มีมาตรฐาน มผช. หรือ มอก.' END END,
            CASE WHEN NOT packaging_label_ok THEN 'ยังไม่มีบรรจุภัณฑ์และฉลาก' END,
            CASE WHEN NOT steady_records_ok THEN 'ยังไม่มีบันทึกการผลิตและยอดขายต่อเนื่อง (3 เดือนขึ้นไป)' END
        ], lambda x: x IS NOT NULL) AS missing_th_list,
        list_filter([
            CASE WHEN NOT members_ok THEN 'fewer than 7 members' END,
            CASE WHEN NOT thai_members_ok THEN 'members not all Thai nationals (or ID unknown)' END,
            CASE WHEN NOT community_link_ok THEN 'no community link (local members/materials)' END,
            CASE WHEN NOT product_type_ok THEN 'product type not one of the five OTOP types' END,
            CASE WHEN NOT standard_ok THEN CASE WHEN product_type IN ('food', 'beverage')
                 THEN 'no FDA (อย.) standard' ELSE 'no TCPS (มผช.) or TIS (มอก.) standard' END END,
            CASE WHEN NOT packaging_label_ok THEN 'no packaging and label' END,
            CASE WHEN NOT steady_records_ok THEN 'no steady production and sales records' END
        ], lambda x: x IS NOT NULL) AS missing_en_list
    FROM checks
)
SELECT s.group_code, s.group_name, s.village_code, s.tambon_code,
       coalesce(r.officer_id, $district_id) AS officer_id,
       coalesce(r.officer_name, $district_name) AS officer_name,
       s.product_name, s.product_type, s.n_members,
       s.members_ok, s.thai_members_ok, s.community_link_ok, s.product_type_ok, s.standard_ok,
       s.packaging_label_ok, s.steady_records_ok, s.score, s.max_score,
       CASE WHEN s.score = s.max_score THEN 'ready'
            WHEN s.score >= s.max_score - 2 THEN 'nearly_ready' ELSE 'not_ready' END AS status,
       CASE WHEN s.score = s.max_score THEN 'พร้อมขึ้นทะเบียน'
            WHEN s.score >= s.max_score - 2 THEN 'เกือบพร้อม' ELSE 'ยังไม่พร้อม' END AS status_th,
       array_to_string(s.missing_th_list, '; ') AS missing_th,
       array_to_string(s.missing_en_list, '; ') AS missing_en,
       s.otop_status
FROM scored s LEFT JOIN roster r ON r.tambon_code = s.tambon_code
ORDER BY officer_id, s.score DESC, s.group_code
