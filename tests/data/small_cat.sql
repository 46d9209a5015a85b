-- A small catalog in the layout of the old `cat` package (MySQL dialect),
-- used by tests/test_parse_cat.py. Three tables, three comment styles.

SET FOREIGN_KEY_CHECKS = 0;
DROP TABLE IF EXISTS DiaObject;

CREATE TABLE DiaObject
    -- <descr>Objects detected on difference images,
    -- one row per version.</descr>
(
    diaObjectId BIGINT NOT NULL,
        -- <descr>Unique id.</descr>
        -- <ucd>meta.id;src</ucd>
    validityStart DOUBLE NOT NULL,
        -- <descr>Time when validity of this version
        -- starts.</descr>
        -- <ucd>time.epoch</ucd>
    ra DOUBLE NOT NULL,
        -- <descr>RA-coordinate of the position of the object.</descr>
        -- <ucd>pos.eq.ra</ucd>
        -- <unit>deg</unit>
    decl DOUBLE NOT NULL,
        -- <descr>Decl-coordinate of the position of the object.</descr>
        -- <unit>deg</unit>
    nDiaSources INT NOT NULL DEFAULT 0,
        -- <descr>Number of DiaSources of this object.</descr>
    flags BIGINT UNSIGNED NOT NULL DEFAULT 0,
        -- <descr>Flags, bitwise OR.</descr>
    isVariable TINYINT(1) NULL,
        -- <descr>Whether the object varies.</descr>
    PRIMARY KEY PK_DiaObject (diaObjectId, validityStart),
    INDEX IDX_DiaObject_validityStart (validityStart)
) ENGINE=MyISAM;

CREATE TABLE DiaSource (
    diaSourceId BIGINT NOT NULL COMMENT 'Unique id of the source.',
    diaObjectId BIGINT NULL COMMENT 'Id of the DiaObject it belongs to.',
    midPointTai DOUBLE NOT NULL COMMENT 'Effective mid-exposure time [d]',
    psFlux FLOAT NULL, -- Point source flux [nJy]
    psFluxErr REAL, -- Uncertainty of psFlux. [nJy]
    filterName CHAR(1) NOT NULL COMMENT 'Filter band',
    comment VARCHAR(64) DEFAULT 'none', -- Free text.
    PRIMARY KEY (diaSourceId),
    KEY IDX_DiaSource_diaObjectId (diaObjectId)
) ENGINE=MyISAM COMMENT='Sources detected on difference images.';

CREATE TABLE Visit (
    visitId INT PRIMARY KEY COMMENT 'Visit number',
    visitTime DOUBLE NOT NULL,
    isValid BIT(1) NOT NULL
        -- <descr>Whether the visit is usable.</descr>
);
CREATE UNIQUE INDEX UQ_Visit_visitTime ON Visit (visitTime);
