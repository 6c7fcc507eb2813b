package sqldeps_test

import (
	"fmt"

	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

func ExampleAnalyze() {
	q, err := sqldeps.Analyze(sqldeps.SQLite,
		"SELECT * FROM `users` u JOIN `orders` o ON o.user_id = u.id WHERE u.id = ? AND o.status IN ('new', 'paid')")
	if err != nil {
		fmt.Println("pass through uncached:", err)
		return
	}
	fmt.Println(q.Kind, q.Cacheable)
	fmt.Println("users:", q.Deps["users"])
	fmt.Println("orders:", q.Deps["orders"])
	// Output:
	// select true
	// users: (id = $1)
	// orders: (status = 'new' AND user_id = $1) OR (status = 'paid' AND user_id = $1)
}
