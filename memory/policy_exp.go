package memory

// TEMPORARY experiment knobs.
var (
	expNoClimb        bool
	expNoRandom       bool
	expNoConservative bool
	expStepSign       = -1.0
	expSketchMul      = 1
)
