package memory

// replace puts n in old's place: the same list, at the same position, so
// that a new value for a key keeps the recency of the entry it replaces
// (the sketch needs nothing: both nodes share the key's hash). n's weight
// may differ from old's; setWeight keeps the list and policy weights in
// step. old is left unlinked. If old is not linked, n is not either.
//
// n must not be published yet (replace writes its weight). The cache
// replaces instead of mutating because readers take no lock: a published
// node's key, expiry and weight never change (nor its value, except by an
// atomic one-word store, value.go).
func (p *policy[K, V]) replace(old, n *node[K, V]) {
	l := p.listOf(old.queue)
	if l == nil {
		n.queue = queueNone
		return
	}
	w := n.weight
	n.weight = old.weight
	n.queue = old.queue
	n.prev, n.next = old.prev, old.next
	if n.prev != nil {
		n.prev.next = n
	} else {
		l.head = n
	}
	if n.next != nil {
		n.next.prev = n
	} else {
		l.tail = n
	}
	old.prev, old.next, old.queue = nil, nil, queueNone
	p.setWeight(n, w)
}
