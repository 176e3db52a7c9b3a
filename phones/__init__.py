"""phones: each officer's worklist on their phone, the last room of the data flow
(source → raw → clean → marts → reports → phones). `items` turns worklist rows into list items
(no national ID leaves), `odk` keeps a Central Entity List equal to them, `kobo` a Kobo form's
media CSV, `record` writes what each server holds to the warehouse, `push` runs it all after a
commit. It may import connectors, warehouse, marts and schemas; only flows import it."""
