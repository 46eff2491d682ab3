-- Where the holder of a lease answers (its API and Spark Connect gateway,
-- as JSON), so replicas that do not hold the `schedulers` lease can hand it
-- the calls only the holder serves.
ALTER TABLE leases ADD COLUMN address TEXT;
