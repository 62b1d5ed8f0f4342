-- Orders at the partner's locations (issue 12). A store POS order names
-- the POS location it is for (GoFrugal's locationId); partners.P.locations
-- maps it to our warehouse, which orders.warehouse holds and where the
-- order's lines reserve, release and ship their stock. location_id is the
-- locationId as the order gave it ('' when it gave none: the partner's
-- own warehouse); location_code, as before, is the partner's location the
-- order stands for (location_id, or partners.P.location without one).
-- source is the order as the partner last sent it: its documented fields
-- ("Create a sales order") by their documented names, each value as the
-- partner wrote it; export order-status writes it back in the "Retrieve a
-- sales order" shape with the order's status now. Orders imported before
-- have '' there.
ALTER TABLE orders ADD COLUMN location_id text NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN source text NOT NULL DEFAULT '';
