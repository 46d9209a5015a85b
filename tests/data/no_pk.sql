-- A table without a primary key: parse_cat must refuse it.
CREATE TABLE DiaObject_To_Object_Match (
    diaObjectId BIGINT NOT NULL, -- Id of the DiaObject.
    objectId BIGINT NOT NULL, -- Id of the Object.
    dist FLOAT -- Distance [arcsec]
);
