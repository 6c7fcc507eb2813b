package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// writeCharts draws hit ratio against capacity, a line per contender, one
// PNG per trace: <charts>/memory-hitratio-<trace>.png.
func writeCharts(cfg config, hits []hitRatio) []string {
	var problems []string
	if err := os.MkdirAll(cfg.charts, 0o755); err != nil {
		return []string{"charts: " + err.Error()}
	}
	traces, caps := traceOrder(hits)
	for _, tr := range traces {
		path := filepath.Join(cfg.charts, "memory-hitratio-"+tr+".png")
		if err := drawChart(path, tr, caps[tr], hits); err != nil {
			problems = append(problems, fmt.Sprintf("chart %s: %v", tr, err))
			continue
		}
		fmt.Printf("wrote %s\n", path)
	}
	return problems
}

// palette has a color per hit-ratio contender (plotutil's repeats after
// seven): cachekit first, Bélády last in black.
var palette = []color.Color{
	color.RGBA{214, 39, 40, 255},   // red
	color.RGBA{31, 119, 180, 255},  // blue
	color.RGBA{23, 190, 207, 255},  // cyan
	color.RGBA{255, 127, 14, 255},  // orange
	color.RGBA{188, 189, 34, 255},  // olive
	color.RGBA{44, 160, 44, 255},   // green
	color.RGBA{148, 103, 189, 255}, // purple
	color.RGBA{140, 86, 75, 255},   // brown
	color.RGBA{0, 0, 0, 255},       // black
}

func drawChart(path, trace string, caps []int, hits []hitRatio) error {
	p := plot.New()
	p.Title.Text = "Hit ratio, " + trace + " (miss → Set, one goroutine)"
	p.X.Label.Text = "capacity (entries)"
	p.Y.Label.Text = "hit ratio"
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, c := range caps {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: capLabel(c)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true

	i := 0
	for _, name := range hitContenders {
		var xys plotter.XYs
		for _, c := range caps {
			if r, ok := hitOf(hits, trace, c, name); ok {
				xys = append(xys, plotter.XY{X: float64(c), Y: r})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color = palette[i%len(palette)]
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		if ours(name) {
			line.Width = vg.Points(3)
		}
		points.Color = line.Color
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(name, line, points)
		i++
	}
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}
