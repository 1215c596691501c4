-- 003: how each action's completion is verified, quiz answer keys, receipt issuers (game
-- servers) and the receipt ids already spent.

ALTER TABLE actions
    ADD COLUMN verification text NOT NULL DEFAULT 'claim'
        CONSTRAINT actions_verification_kind
        CHECK (verification IN ('claim', 'quiz', 'receipt', 'server')),
    -- A quiz's questions (public) and answer key (secret: the API never lists it), one answer
    -- per question; both empty for any other kind.
    ADD COLUMN quiz_questions text[] NOT NULL DEFAULT '{}',
    ADD COLUMN quiz_answers text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT actions_quiz_key CHECK (
        (verification = 'quiz') = (cardinality(quiz_questions) > 0)
        AND cardinality(quiz_questions) = cardinality(quiz_answers)
        AND cardinality(quiz_questions) <= 20);

-- The receipt (its JWT id) a completion was proved with. Unique: a receipt is accepted once,
-- ever, and the single commit statement writes it, so a replay on another node at the same
-- instant fails in PostgreSQL rather than in a check that could race.
ALTER TABLE score_history
    ADD COLUMN receipt_jti text
        CONSTRAINT score_history_receipt_jti_length CHECK (length(receipt_jti) BETWEEN 1 AND 128);
CREATE UNIQUE INDEX score_history_receipt_jti_key ON score_history (receipt_jti)
    WHERE receipt_jti IS NOT NULL;

-- Game servers that sign receipts (HS256). The secret must be kept to verify a signature;
-- `leaderboard issuers create` shows it once. A revoked issuer keeps its row, so its name can
-- never be taken again by a new secret that old receipts would then verify against.
CREATE TABLE issuers (
    -- The receipts' `iss`, matched exactly.
    name       varchar(64) PRIMARY KEY
               CONSTRAINT issuers_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
-- "Game-EU" and "game-eu" would be two issuers operators could not tell apart: one name.
CREATE UNIQUE INDEX issuers_name_key ON issuers (lower(name));
