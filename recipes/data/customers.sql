-- The sample customer database (SQLite) that recipes reach as 'customers'.
--
-- When a recipe uses the database 'customers' and none is configured, autorun builds
-- $AUTORUN_HOME/customers.db from this file on first use; this file itself is never
-- modified. Build one by hand with: sqlite3 customers.db < customers.sql
--
-- Every timestamp is relative to the moment the database is built and written the way
-- JS Date.toISOString() writes it (2026-11-15T09:00:00.000Z, UTC), so that recipes can
-- compare columns with ctx.daysAgo(n) and ctx.now() as plain strings.
--
-- The 50 customers:
--    6 whose last ticket was solved 7 to 10 days ago and who were never surveyed
--      (ids 3, 8, 14, 21, 30, 42): what
--      SELECT ... WHERE solved_at < ctx.daysAgo(7) AND nps_sent_at IS NULL returns
--    2 solved 7 to 10 days ago and surveyed yesterday (ids 11, 37)
--   12 solved within the last 7 days, not surveyed yet
--   14 solved 1 to 13 months ago and surveyed then (12 answered, 2 did not)
--   16 with no solved ticket: 6 wait on an open or pending ticket, 10 never wrote in
-- Names include non-ASCII ones; every address is @example.com.

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    company TEXT,
    country TEXT,                 -- ISO 3166-1 alpha-2
    plan TEXT NOT NULL CHECK (plan IN ('free', 'starter', 'pro', 'enterprise')),
    created_at TEXT NOT NULL,
    solved_at TEXT,               -- when their most recent ticket was solved, or NULL
    nps_sent_at TEXT,             -- when the NPS survey was sent, NULL = never
    nps_score INTEGER CHECK (nps_score BETWEEN 0 AND 10)  -- their answer, NULL = none
);

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'solved')),
    created_at TEXT NOT NULL,
    solved_at TEXT
);

CREATE INDEX customers_by_solved_at ON customers(solved_at);
CREATE INDEX tickets_by_customer ON tickets(customer_id, status);

INSERT INTO customers (id, name, email, company, country, plan, created_at) VALUES
    (1, 'María José Fernández', 'maria.fernandez@example.com', 'Fernández Asesores', 'ES', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-57 days', '-2 hours')),
    (2, 'Liam O''Connor', 'liam.oconnor@example.com', 'Harbour Analytics', 'IE', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-124 days', '-2 hours')),
    (3, 'Zoë Müller', 'zoe.mueller@example.com', 'Müller & Söhne GmbH', 'DE', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-138 days', '-6 hours')),
    (4, '陈伟', 'chen.wei@example.com', 'Shenzhen Brightline', 'CN', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days', '-6 hours')),
    (5, 'Amara Okafor', 'amara.okafor@example.com', 'Lagos Logistics', 'NG', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-205 days', '-5 hours')),
    (6, 'Søren Lindqvist', 'soren.lindqvist@example.com', 'Nordlys ApS', 'DK', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-287 days', '-6 hours')),
    (7, 'Priya Raghunathan', 'priya.raghunathan@example.com', 'Tamarind Labs', 'IN', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days', '-7 hours')),
    (8, 'François Lefèvre', 'francois.lefevre@example.com', 'Atelier Lefèvre', 'FR', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-324 days')),
    (9, '田中 由紀', 'yuki.tanaka@example.com', 'Sakura Design', 'JP', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-354 days')),
    (10, 'Olumide Adeyemi', 'olumide.adeyemi@example.com', 'Adeyemi Foods', 'NG', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-15 days', '-2 hours')),
    (11, 'Łukasz Wiśniewski', 'lukasz.wisniewski@example.com', 'Wisła Software', 'PL', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-435 days', '-2 hours')),
    (12, 'Isabela Conceição', 'isabela.conceicao@example.com', 'Conceição Modas', 'BR', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-524 days', '-5 hours')),
    (13, 'Noah Schneider', 'noah.schneider@example.com', 'Alpenblick AG', 'CH', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-576 days', '-6 hours')),
    (14, 'Ayşe Yılmaz', 'ayse.yilmaz@example.com', 'Boğaziçi Tekstil', 'TR', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-46 days', '-5 hours')),
    (15, 'Mateo Rossi', 'mateo.rossi@example.com', 'Rossi Ristoranti', 'IT', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-16 days', '-6 hours')),
    (16, 'Nguyễn Thị Lan', 'lan.nguyen@example.com', 'Saigon Craft', 'VN', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-113 days', '-8 hours')),
    (17, 'Emma Johansson', 'emma.johansson@example.com', 'Fjällräven Consulting', 'SE', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-239 days', '-3 hours')),
    (18, 'Анна Петрова', 'anna.petrova@example.com', 'Balkan Print', 'BG', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-21 days', '-5 hours')),
    (19, 'Siobhán Ní Bhriain', 'siobhan.nibhriain@example.com', 'Cois Farraige Ltd', 'IE', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-225 days')),
    (20, 'Kwame Mensah', 'kwame.mensah@example.com', 'Accra Solar', 'GH', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-21 days', '-2 hours')),
    (21, 'Björn Ångström', 'bjorn.angstrom@example.com', 'Ångström Instruments', 'SE', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-306 days')),
    (22, 'Hannah Goldberg', 'hannah.goldberg@example.com', 'Goldberg Legal', 'US', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-454 days', '-1 hours')),
    (23, 'José Álvarez', 'jose.alvarez@example.com', 'Álvarez Construcciones', 'MX', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days', '-5 hours')),
    (24, 'Fatima Zahra El Amrani', 'fatima.elamrani@example.com', 'Atlas Voyages', 'MA', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-411 days')),
    (25, 'Oliver Bennett', 'oliver.bennett@example.com', 'Bennett & Co', 'GB', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-595 days', '-4 hours')),
    (26, 'Chloé Dubois', 'chloe.dubois@example.com', 'Chocolaterie Dubois', 'BE', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-31 days', '-22 hours')),
    (27, 'Rahul Mehta', 'rahul.mehta@example.com', 'Mehta Pharma', 'IN', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-522 days', '-12 hours')),
    (28, '김민지', 'minji.kim@example.com', 'Hangang Media', 'KR', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 days', '-1 hours')),
    (29, 'Lucas Martin', 'lucas.martin@example.com', 'Martin Transports', 'FR', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-273 days', '-1 hours')),
    (30, 'Ngozi Eze', 'ngozi.eze@example.com', 'Eze Health', 'NG', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-139 days', '-12 hours')),
    (31, 'Mia Hoffmann', 'mia.hoffmann@example.com', 'Hoffmann Bau', 'AT', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-377 days', '-3 hours')),
    (32, 'Tomáš Dvořák', 'tomas.dvorak@example.com', 'Vltava Systems', 'CZ', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-35 days', '-12 hours')),
    (33, 'Σοφία Παπαδοπούλου', 'sofia.papadopoulou@example.com', 'Aegean Travel', 'GR', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-245 days')),
    (34, 'Ethan Walker', 'ethan.walker@example.com', 'Walker Outdoor', 'US', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-23 days', '-7 hours')),
    (35, 'Aiko Suzuki', 'aiko.suzuki@example.com', 'Suzuki Robotics', 'JP', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-555 days')),
    (36, 'Jonas Berg', 'jonas.berg@example.com', 'Fjord Fisk AS', 'NO', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-19 days')),
    (37, 'Camila Rodríguez', 'camila.rodriguez@example.com', 'Pampa Vinos', 'AR', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-398 days', '-3 hours')),
    (38, 'Ananya Iyer', 'ananya.iyer@example.com', 'Iyer Textiles', 'IN', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-696 days', '-3 hours')),
    (39, 'Elif Demir', 'elif.demir@example.com', 'Demir Mimarlık', 'TR', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-468 days')),
    (40, 'Jakob Fischer', 'jakob.fischer@example.com', 'Fischer Elektro', 'DE', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days', '-4 hours')),
    (41, 'Olivia Thompson', 'olivia.thompson@example.com', 'Coral Coast Tours', 'AU', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-337 days', '-6 hours')),
    (42, 'Thabo Nkosi', 'thabo.nkosi@example.com', 'Nkosi Mining Services', 'ZA', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-83 days', '-20 hours')),
    (43, 'Ingrid Solberg', 'ingrid.solberg@example.com', 'Solberg Arkitekter', 'NO', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-20 days', '-7 hours')),
    (44, 'Marco Bianchi', 'marco.bianchi@example.com', 'Bianchi Cicli', 'IT', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-153 days', '-20 hours')),
    (45, 'Leila Haddad', 'leila.haddad@example.com', 'Cedar Bakery', 'LB', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-525 days', '-3 hours')),
    (46, 'Daniel Cohen', 'daniel.cohen@example.com', 'Cohen Capital', 'IL', 'enterprise', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-29 days', '-1 hours')),
    (47, 'Aroha Ngata', 'aroha.ngata@example.com', 'Kōwhai Wellness', 'NZ', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-265 days')),
    (48, 'Pedro Gonçalves', 'pedro.goncalves@example.com', 'Gonçalves Cortiça', 'PT', 'pro', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-686 days', '-6 hours')),
    (49, 'Wiktoria Kowalczyk', 'wiktoria.kowalczyk@example.com', 'Kowalczyk Studio', 'PL', 'free', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days', '-4 hours')),
    (50, 'Samuel Adjei', 'samuel.adjei@example.com', 'Adjei Cocoa', 'GH', 'starter', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-376 days', '-10 hours'));

INSERT INTO tickets (customer_id, subject, status, created_at, solved_at) VALUES
    (1, 'Cannot reset my password', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-6 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')),
    (2, 'Invoice shows the wrong VAT number', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days', '-7 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days', '-2 hours')),
    (2, 'Export to CSV times out', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-91 days', '-8 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-90 days', '-2 hours')),
    (3, 'How do I add a second admin?', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days', '-12 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days', '-6 hours')),
    (5, 'Webhook deliveries failing with 401', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-13 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 hours')),
    (6, 'Charged twice this month', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-45 days', '-15 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-45 days', '-6 hours')),
    (6, 'Mobile app crashes on login', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-106 days', '-12 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-105 days', '-6 hours')),
    (8, 'Need to change our billing email', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days', '-11 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days')),
    (9, 'SSO login loops back to the sign-in page', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 days', '-12 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 days')),
    (11, 'Where can I download our data?', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days', '-16 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days', '-2 hours')),
    (12, 'Report totals do not match the dashboard', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 days', '-20 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 days', '-5 hours')),
    (12, 'Upgrade to annual billing', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-121 days', '-11 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-120 days', '-5 hours')),
    (13, 'Calendar sync stopped working', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-75 days', '-22 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-75 days', '-6 hours')),
    (14, 'Import rejected: unknown column', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days', '-22 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days', '-5 hours')),
    (16, 'Cannot reset my password', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days', '-3 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 days', '-8 hours')),
    (17, 'Invoice shows the wrong VAT number', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-90 days', '-23 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-90 days', '-3 hours')),
    (19, 'Export to CSV times out', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days', '-22 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days')),
    (21, 'How do I add a second admin?', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-9 days', '-4 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-9 days')),
    (22, 'Webhook deliveries failing with 401', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-120 days', '-6 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-120 days', '-1 hours')),
    (22, 'Charged twice this month', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-181 days', '-7 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-180 days', '-1 hours')),
    (24, 'Mobile app crashes on login', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3 days', '-7 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3 days')),
    (25, 'Need to change our billing email', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-150 days', '-12 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-150 days', '-4 hours')),
    (27, 'SSO login loops back to the sign-in page', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3 days', '-22 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3 days', '-12 hours')),
    (29, 'Where can I download our data?', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-180 days', '-13 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-180 days', '-1 hours')),
    (30, 'Report totals do not match the dashboard', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 days', '-1 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-9 days', '-12 hours')),
    (31, 'Upgrade to annual billing', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-210 days', '-17 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-210 days', '-3 hours')),
    (33, 'Calendar sync stopped working', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-4 days', '-16 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-4 days')),
    (35, 'Import rejected: unknown column', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-240 days', '-18 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-240 days')),
    (37, 'Cannot reset my password', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-9 days', '-23 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-9 days', '-3 hours')),
    (38, 'Invoice shows the wrong VAT number', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-271 days'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-270 days', '-3 hours')),
    (38, 'Export to CSV times out', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-331 days', '-9 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-330 days', '-3 hours')),
    (39, 'How do I add a second admin?', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 days', '-22 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 days')),
    (41, 'Webhook deliveries failing with 401', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-300 days', '-10 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-300 days', '-6 hours')),
    (42, 'Charged twice this month', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 days', '-1 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-9 days', '-20 hours')),
    (44, 'Mobile app crashes on login', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-6 days', '-3 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 days', '-20 hours')),
    (45, 'Need to change our billing email', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-340 days', '-11 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-340 days', '-3 hours')),
    (47, 'SSO login loops back to the sign-in page', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-6 days', '-10 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-6 days')),
    (48, 'Where can I download our data?', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-390 days', '-17 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-390 days', '-6 hours')),
    (48, 'Report totals do not match the dashboard', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-451 days', '-12 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-450 days', '-6 hours')),
    (50, 'Upgrade to annual billing', 'solved', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-6 days', '-23 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-6 days', '-10 hours')),
    (4, 'API rate limit too low for our nightly sync', 'open', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 days', '-6 hours'), NULL),
    (10, 'Feature request: dark mode', 'open', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days', '-2 hours'), NULL),
    (18, 'Attachments larger than 10 MB fail', 'pending', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 hours'), NULL),
    (26, 'Cancel my subscription', 'open', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days', '-22 hours'), NULL),
    (32, 'Two-factor codes arrive late', 'open', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-12 hours'), NULL),
    (40, 'Translation missing in the German invoice', 'pending', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-4 days', '-4 hours'), NULL);

-- A customer's solved_at is when their most recent ticket was solved.
UPDATE customers SET solved_at = (
    SELECT max(t.solved_at) FROM tickets t WHERE t.customer_id = customers.id AND t.status = 'solved'
);

-- Surveys already sent, and the answers that came back.
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 days'), nps_score = NULL WHERE id = 11;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-20 hours'), nps_score = 9 WHERE id = 37;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-23 days', '-2 hours'), nps_score = 10 WHERE id = 2;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-38 days', '-6 hours'), nps_score = 9 WHERE id = 6;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-53 days', '-5 hours'), nps_score = 7 WHERE id = 12;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-68 days', '-6 hours'), nps_score = NULL WHERE id = 13;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-83 days', '-3 hours'), nps_score = 3 WHERE id = 17;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-113 days', '-1 hours'), nps_score = 8 WHERE id = 22;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-143 days', '-4 hours'), nps_score = 10 WHERE id = 25;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-173 days', '-1 hours'), nps_score = 0 WHERE id = 29;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-203 days', '-3 hours'), nps_score = 6 WHERE id = 31;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-233 days'), nps_score = 9 WHERE id = 35;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-263 days', '-3 hours'), nps_score = NULL WHERE id = 38;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-293 days', '-6 hours'), nps_score = 8 WHERE id = 41;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-333 days', '-3 hours'), nps_score = 10 WHERE id = 45;
UPDATE customers SET nps_sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-383 days', '-6 hours'), nps_score = 5 WHERE id = 48;
