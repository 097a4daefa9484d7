-- Issue 13: a date the guest celebrates every year (e.g. a wedding), greeted like the
-- birthday. Personal data: erased with the profile (store/privacy.rs), filled from a
-- duplicate on merge.
ALTER TABLE guests ADD COLUMN anniversary DATE;
