-- The fruits that cost more than one.
select id, name, price
from {{ ref('fruits') }}
where price > 1
